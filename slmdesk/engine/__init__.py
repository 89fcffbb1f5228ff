"""The inference engine: the only package that imports llama_cpp."""

import os

# llama.cpp's CPU backend uses OpenMP. With libgomp's default active waiting, threads spin
# at every barrier; when another process holds one of the cores (the usual case on a
# desktop) a 2-thread decode on 2 cores fell from ~43 to ~4 tokens/s here. Passive waiting
# costs little when the machine is idle. libgomp reads this when it loads, i.e. when
# llama_cpp is first imported, which only this package does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
