"""Qt widgets that adapt the core (store, engine, chat service) to a desktop window."""
