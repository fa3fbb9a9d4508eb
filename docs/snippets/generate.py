"""Backgrounds for one photo through the HTTPS API, with httpx: send it, wait, download.

BACKDROP_API_URL and BACKDROP_API_KEY name the stack; `python generate.py PHOTO`."""

import base64
import os
import sys
import time
from pathlib import Path

import httpx

api = httpx.Client(
    base_url=os.environ["BACKDROP_API_URL"],
    headers={"x-api-key": os.environ["BACKDROP_API_KEY"]},
    timeout=30,
)
photo = Path(sys.argv[1])

# Up to 4 MB inline; a larger photo goes through POST /v1/uploads first.
answer = api.post(
    "/v1/generations",
    json={
        "image_base64": base64.b64encode(photo.read_bytes()).decode(),
        "prompt": "on a marble counter, morning light",
        "count": 2,
    },
)
answer.raise_for_status()  # 202: the job, queued
job = answer.json()

while job["status"] in ("queued", "running"):
    time.sleep(2)
    job = api.get(f"/v1/generations/{job['id']}").json()

if job["status"] != "succeeded":
    sys.exit(f"{job['id']} {job['status']}: {job['error']['code']}: {job['error']['message']}")
for result in job["results"]:  # each url downloads for ResultUrlExpirySeconds
    path = Path(f"{job['id']}-{result['index']}.{result['format'].lower()}")
    path.write_bytes(httpx.get(result["url"]).raise_for_status().content)
    print(path)
