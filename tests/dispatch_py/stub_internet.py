"""A local stand-in for the internet services dispatch-py's examples call.

examples/fanout.py and examples/github_stats.py read GitHub's REST API
(https://api.github.com), examples/getting_started.py posts to https://httpstat.us/200.
The examples run unchanged: `redirect()` points httpx.get and requests.post at this
stub for those two hosts only, and the stub answers what the examples' assertions expect
of the real services (a repository's JSON with its stargazers and contributors URLs;
"200 OK").
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import requests

REDIRECTED = ("https://api.github.com", "https://httpstat.us")
STARGAZERS = ["achille-roussel"] + [f"stargazer-{i}" for i in range(19)]
CONTRIBUTORS = [f"contributor-{i}" for i in range(8)]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        base = f"http://127.0.0.1:{self.server.server_port}"
        if len(parts) == 3 and parts[0] == "repos":
            owner, name = parts[1], parts[2]
            repo = {
                "full_name": f"{owner}/{name}",
                "stargazers_count": len(STARGAZERS),
                "watchers_count": len(STARGAZERS),
                "forks_count": 3,
                "stargazers_url": f"{base}/repos/{owner}/{name}/stargazers",
                "contributors_url": f"{base}/repos/{owner}/{name}/contributors",
            }
            return self.answer(200, json.dumps(repo))
        if len(parts) == 4 and parts[3] == "stargazers":
            return self.answer(200, json.dumps([{"login": s} for s in STARGAZERS]))
        if len(parts) == 4 and parts[3] == "contributors":
            return self.answer(200, json.dumps([{"login": c} for c in CONTRIBUTORS]))
        self.answer(404, json.dumps({"message": "Not Found"}))

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/200":
            return self.answer(200, "200 OK", "text/plain")
        self.answer(404, "not found", "text/plain")


class StubInternet:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rewrite(self, url):
        for prefix in REDIRECTED:
            if str(url).startswith(prefix):
                return self.url + str(url)[len(prefix):]
        return url

    def redirect(self):
        """Points httpx.get and requests.post at the stub for the redirected hosts."""
        real_get, real_post = httpx.get, requests.post
        httpx.get = lambda url, *args, **kwargs: real_get(self.rewrite(url), *args, **kwargs)
        requests.post = lambda url, *args, **kwargs: real_post(self.rewrite(url), *args,
                                                              **kwargs)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
