#!/usr/bin/env python3
"""A hostile HTTP server on 127.0.0.1 for the client's regression specs.

usage: hostile_http.py PORTFILE
Writes the port it listens on to PORTFILE, then answers each connection by the
request path:
  /big-headers     a 300 KB header block (many headers)
  /long-header     one 300 KB header line
  /dup-headers     the same header 20,000 times (200 KB)
  /http09          an HTTP/0.9 answer (a body, no status line)
  /bad-status      a status line that is not HTTP
  /redirect-file   a 302 to file:///etc/passwd
  /close-slow      Connection: close after a 50 ms pause
  /echo            200 with the request head as the body
Runs until killed; every connection is handled in its own thread.
"""
import socket
import sys
import threading
import time


def head_of(conn):
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer(conn):
    try:
        head = head_of(conn)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        path = line.split(" ")[1] if " " in line else "/"
        path = path.split("?")[0]
        if path == "/big-headers":
            hs = "".join("X-Filler-%d: %s\r\n" % (i, "v" * 90) for i in range(3000))
            conn.sendall(("HTTP/1.1 200 OK\r\n" + hs + "Content-Length: 2\r\n\r\nok").encode())
        elif path == "/long-header":
            conn.sendall(("HTTP/1.1 200 OK\r\nX-Long: " + "v" * 300000 + "\r\nContent-Length: 2\r\n\r\nok").encode())
        elif path == "/dup-headers":
            hs = "X-Dup: a\r\n" * 20000
            conn.sendall(("HTTP/1.1 200 OK\r\n" + hs + "Content-Length: 2\r\n\r\nok").encode())
        elif path == "/http09":
            conn.sendall(b"just a body, no status line\n")
        elif path == "/bad-status":
            conn.sendall(b"HELLO THERE\r\n\r\n")
        elif path == "/redirect-file":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n")
        elif path == "/close-slow":
            time.sleep(0.05)
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        else:
            body = head
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
