"""Twelve short reviews with their labels, shared by the Classify and Data sets tab tests."""

TEXTS = [
    "I loved this film, it was wonderful.",
    "Terrible service, I will never come back.",
    "What a fantastic day, everything went great!",
    "The food was cold and tasted awful.",
    "Absolutely brilliant, highly recommended.",
    "This is the worst purchase I have ever made.",
    "Great value and friendly staff.",
    "Broken on arrival and support ignored me.",
    "A delightful surprise from start to finish.",
    "Boring, slow and far too long.",
    "I am very happy with the result.",
    "I hate it, a complete waste of money.",
]
GOLD = ["positive", "negative"] * 6
