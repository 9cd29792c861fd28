#!/usr/bin/env python3
"""A TCP proxy for the publish tests: forwards 127.0.0.1:<port> to TARGET_HOST:TARGET_PORT and drops
(RST) the first connection whose client has sent more than CUT_AFTER bytes, mid-request. Every later
connection is forwarded whole. Prints its port on the first line of stdout, and one line per cut.
usage: publish_drop_proxy.py TARGET_HOST TARGET_PORT CUT_AFTER"""
import socket
import struct
import sys
import threading

target = (sys.argv[1], int(sys.argv[2]))
cut_after = int(sys.argv[3])
lock = threading.Lock()
state = {"cut": False}


def hard_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
        s.close()
    except OSError:
        pass


def pump_back(up, client):
    try:
        while data := up.recv(65536):
            client.sendall(data)
    except OSError:
        pass
    finally:
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    up = socket.create_connection(target)
    threading.Thread(target=pump_back, args=(up, client), daemon=True).start()
    sent = 0
    try:
        while data := client.recv(65536):
            sent += len(data)
            with lock:
                cut = not state["cut"] and sent > cut_after
                if cut:
                    state["cut"] = True
            if cut:
                print(f"cut a connection after {sent} bytes", flush=True)
                hard_close(client)
                hard_close(up)
                return
            up.sendall(data)
        up.shutdown(socket.SHUT_WR)
    except OSError:
        hard_close(up)


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
