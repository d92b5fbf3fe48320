"""Prints a base port B such that B..B+4, B+100.. and B+200.. (a 5-node
`topod dev` cluster's API, Raft and peer ports) are all free on 127.0.0.1."""
import random
import socket
import sys

NODES = 5


def free(base):
    socks = []
    try:
        for off in (0, 100, 200):
            for i in range(NODES):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + off + i))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


for _ in range(200):
    base = random.randrange(20000, 60000)
    if free(base):
        print(base)
        sys.exit(0)
sys.exit("no free port range found")
