import socket
srv = socket.socket(socket.AF_INET6); srv.bind(("::1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()[:2]); a, _ = srv.accept()
c.sendall(b"over v6"); a.recv(100)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.connect(("::1", 9)); u.send(b"udp6")
