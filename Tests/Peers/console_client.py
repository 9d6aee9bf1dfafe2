#!/usr/bin/env python3
"""The staff console over HTTPS as a tool or a browser calls it: Connect JSON with Python's
requests, independent of the node's own code. Prints one JSON object of what it saw.

    console_client.py BASE_URL CA_PEM   (env: LOGIN, PASSWORD, TOTP_SECRET)
"""
import base64, hashlib, hmac, json, os, struct, sys, time

import requests

base, ca = sys.argv[1], sys.argv[2]
login, password, secret = os.environ["LOGIN"], os.environ["PASSWORD"], os.environ["TOTP_SECRET"]


def totp(step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def call(session, method, body, headers=None, raw=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else json.dumps(body)
    return session.post(f"{base}/casebridge.v1.Console/{method}", data=data, headers=h, verify=ca, timeout=30)


seen = {}
anonymous = requests.Session()
r = call(anonymous, "ListCases", {})
seen["no_session"] = [r.status_code, r.json().get("code")]
r = call(anonymous, "Login", {"login": login, "password": "wrong password!", "code": "000000"})
seen["wrong_password"] = [r.status_code, r.json().get("code")]

browser = requests.Session()
r = call(browser, "Login", {"login": login, "password": password, "code": totp(int(time.time()) // 30 + 1),
                            "client": "python-requests"})
seen["login"] = r.status_code
reply = r.json()
token = reply["token"]
seen["login_role"] = reply["account"]["role"]
seen["set_cookie"] = r.raw.headers.getlist("Set-Cookie") if hasattr(r.raw.headers, "getlist") else \
    r.headers.get("Set-Cookie")
seen["security_headers"] = {k: r.headers.get(k) for k in
                            ["Content-Security-Policy", "X-Content-Type-Options", "Cache-Control",
                             "Strict-Transport-Security", "X-Frame-Options"]}

# A browser's cookie alone is not enough: the CSRF header must come with it.
r = call(browser, "WhoAmI", {})
seen["cookie_without_csrf"] = [r.status_code, r.json().get("code")]
csrf = {"X-CSRF-Token": browser.cookies.get("cb_csrf")}
r = call(browser, "WhoAmI", {}, headers=csrf)
seen["cookie_with_csrf"] = [r.status_code, r.json().get("displayName")]
r = call(browser, "WhoAmI", {}, headers=dict(csrf, Origin="https://evil.example"))
seen["cross_origin"] = [r.status_code, r.json().get("code")]

# A tool: the bearer token.
bearer = {"Authorization": f"Bearer {token}"}
tool = requests.Session()
request = {"kind": "REQUEST_KIND_RESCUE", "urgency": "URGENCY_IMMEDIATE", "originReference": "HTTPS-1",
           "persons": [{"personRef": "P1", "fullName": "Person 0 Https", "nationality": "ID"}],
           "location": {"province": "Preah Sihanouk"}}
r = call(tool, "Submit", request, headers=bearer)
seen["submit"] = [r.status_code, r.json().get("status")]
case_id = r.json().get("caseId")
seen["case_id"] = case_id
r = call(tool, "GetCase", {"caseId": case_id}, headers=bearer)
seen["get_case"] = [r.status_code, r.json().get("request", {}).get("filedBy")]

# Server streams: Server-Sent Events for plain JSON...
r = tool.post(f"{base}/casebridge.v1.Console/ListCases", data="{}", verify=ca, timeout=30,
              headers=dict(bearer, **{"Content-Type": "application/json"}), stream=True)
events = [line[6:] for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
seen["sse"] = [r.status_code, r.headers.get("Content-Type"), [json.loads(e).get("caseId") for e in events]]
# ...and Connect streaming envelopes.
envelope = b"\x00" + struct.pack(">I", 2) + b"{}"
r = tool.post(f"{base}/casebridge.v1.Console/ListCases", data=envelope, verify=ca, timeout=30,
              headers=dict(bearer, **{"Content-Type": "application/connect+json"}))
body, frames = r.content, []
while len(body) >= 5:
    flags, length = body[0], struct.unpack(">I", body[1:5])[0]
    frames.append([flags, json.loads(body[5:5 + length])])
    body = body[5 + length:]
seen["connect_stream"] = [r.status_code, [f[0] for f in frames], frames[0][1].get("caseId") if frames else None]

# Bad input: a clear Connect error, never a stack.
r = call(tool, "GetCase", None, headers=bearer, raw="{not json")
seen["bad_json"] = [r.status_code, r.json().get("code")]
r = call(tool, "GetCase", {"caseIdd": case_id}, headers=bearer)
seen["unknown_field"] = [r.status_code, r.json().get("code"), r.json().get("message")]
r = call(tool, "NoSuchMethod", {}, headers=bearer)
seen["no_method"] = r.status_code
r = call(tool, "Logout", {}, headers=bearer)
seen["logout"] = r.status_code
r = call(tool, "WhoAmI", {}, headers=bearer)
seen["after_logout"] = [r.status_code, r.json().get("code")]
print(json.dumps(seen))
