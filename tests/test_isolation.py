"""Tenant isolation: two keys, two collections, hundreds of attempts to reach the other key's data.

`alpha` and `bravo` each hold documents whose every paragraph carries a marker (ALPHA-7Q4K / BRAVO-3Z9W) and
whose names are distinct. Each key (chat + ingest, limited to its own collection) uploads a file (a job),
chats (conversations, messages, citations) and votes. Then each key tries to reach the other's data every way
the API offers: direct ids (documents, originals, conversations, messages, jobs), search filters (collections,
file names), chat and ticket drafts over the other's collection or about its content, JSON and SSE, the
OpenAI-compatible route, and every listing. No response to one key may carry the other's marker, file names or
ids; refusals are the documented 403/404 codes, and a forbidden collection answers exactly like a missing one.
"""

from __future__ import annotations

import re
import time

import pytest
from litestar.testing import TestClient

from assistant import assembly
from assistant.app import create_app
from tests.api_helpers import auth, settings_for
from tests.conftest import make_corpus

TOPICS = {  # each collection's subject matter: the other key asks about exactly these
    "alpha": ["orbital telescope mirror coating", "glacier drilling permits", "violin varnish recipe",
              "tram depot night shifts"],
    "bravo": ["submarine sonar calibration", "orchid greenhouse humidity", "cathedral bell tuning",
              "racing yacht sail repair"],
}
MARKERS = {"alpha": "ALPHA-7Q4K", "bravo": "BRAVO-3Z9W"}


def corpus(collection: str) -> dict[str, str]:
    marker = MARKERS[collection]
    docs = {}
    for index, topic in enumerate(TOPICS[collection]):
        title = topic.title()
        docs[f"{collection}-{topic.split()[0]}-handbook.md"] = (
            f"# {title}\n\n## Procedure\n\nThe {topic} procedure is owned by team {marker}. Every {topic} step is "
            f"logged with reference {marker}-{index} before work starts.\n\n## Budget\n\nThe {topic} budget is "
            f"{index + 4}00 EUR a quarter, approved by {marker} leads.\n"
        )
    return docs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The app, each key, and what each key created (conversation, message, job and document ids)."""
    root = tmp_path_factory.mktemp("iso")
    home = root / "home"
    settings = settings_for(home)
    job = assembly.ingest_job(settings)
    for collection in ("alpha", "bravo"):
        assert job.run([make_corpus(root / collection, corpus(collection))], collection).exit_code() == 0
    app = create_app(settings_for(home, server={"rate_limit_per_minute": 100_000}), background_load=False)
    with TestClient(app) as client:
        keys = app.state.services.db.keys
        made = {}
        for collection in ("alpha", "bravo"):
            record, key = keys.create(f"{collection}-team", "chat,ingest", collections=[collection])
            made[collection] = own = {"key": key, "key_id": record.id, "conversations": [], "messages": [], "jobs": []}
            h = auth(key)
            marker = MARKERS[collection]
            upload = [("files", (f"{collection}-uploaded-memo.md",
                                 f"# Memo\n\nThe uploaded memo of team {marker} lists the on-call rota.".encode(),
                                 "text/markdown"))]
            response = client.post("/v1/documents", files=upload, data={"collection": collection}, headers=h)
            assert response.status_code == 202, response.text
            own["jobs"].append(response.json()["job_id"])
            for topic in TOPICS[collection][:2]:
                body = client.post("/v1/chat", json={"message": f"Who owns the {topic} procedure?"}, headers=h).json()
                assert marker in str(body["answer"]), body  # the key's own data is reachable (the test can fail)
                own["conversations"].append(body["conversation_id"])
                own["messages"].append(body["message_id"])
                assert client.post(f"/v1/messages/{body['message_id']}/feedback", json={"rating": "up"},
                                   headers=h).status_code == 200
        for collection in ("alpha", "bravo"):
            wait_jobs(client, made[collection])
            docs = client.get("/v1/documents", headers=auth(made[collection]["key"])).json()["documents"]
            assert {d["collection"] for d in docs} == {collection} and len(docs) == len(TOPICS[collection]) + 1
            made[collection]["documents"] = [d["id"] for d in docs]
            made[collection]["names"] = [d["name"] for d in docs]
        yield app, client, made


def wait_jobs(client, own, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    for job_id in own["jobs"]:
        while (job := client.get(f"/v1/jobs/{job_id}", headers=auth(own["key"])).json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "done", job


class Prober:
    """Sends one key's requests and checks that no response carries the other key's data."""

    def __init__(self, client, made, me: str, other: str):
        self.client, self.me, self.other = client, made[me], made[other]
        self.headers = auth(self.me["key"])
        self.secrets = [MARKERS[other], *self.other["names"], *self.other["conversations"], *self.other["messages"],
                        *self.other["jobs"], self.other["key_id"]]
        self.count = 0

    def send(self, method: str, url: str, expect: set[int] | int = 200, **kwargs):
        response = self.client.request(method, url, headers=self.headers, **kwargs)
        self.count += 1
        expected = {expect} if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {url} {kwargs}: {response.status_code} {response.text}"
        sent = f"{url} {kwargs}"  # an id the request itself named may be echoed in the refusal: not a leak
        leak = re.compile("|".join(re.escape(s) for s in self.secrets if s not in sent))
        found = leak.search(response.text) or leak.search(str(response.headers))
        assert found is None, f"{method} {url} {kwargs} leaked {found.group(0)!r}: {response.text[:500]}"
        return response

    def refused(self, method: str, url: str, status: int, code: str, **kwargs) -> None:
        body = self.send(method, url, status, **kwargs).json()
        assert body["error"]["code"] == code, body


@pytest.mark.parametrize("me,other", [("alpha", "bravo"), ("bravo", "alpha")])
def test_a_key_never_reaches_the_other_keys_data(world, me, other):
    _, client, made = world
    p = Prober(client, made, me, other)
    theirs = made[other]
    own_marker = MARKERS[me]

    # Direct ids: every object of the other key looks like a missing one.
    for conversation in theirs["conversations"]:
        p.refused("GET", f"/v1/conversations/{conversation}", 404, "conversation_not_found")
        p.refused("DELETE", f"/v1/conversations/{conversation}", 404, "conversation_not_found")
        for stream in (False, True):
            p.refused("POST", "/v1/chat", 404, "conversation_not_found",
                      json={"message": "continue please", "conversation_id": conversation, "stream": stream})
    for message in theirs["messages"]:
        for rating in ("up", "down", 1, -1):
            p.refused("POST", f"/v1/messages/{message}/feedback", 404, "message_not_found",
                      json={"rating": rating, "comment": "mine now"})
    for job in theirs["jobs"]:
        p.refused("GET", f"/v1/jobs/{job}", 404, "job_not_found")
    for document in theirs["documents"]:
        p.refused("GET", f"/v1/documents/{document}/file", 404, "document_not_found")
        p.refused("DELETE", f"/v1/documents/{document}", 404, "document_not_found")

    # Naming the other's collection anywhere: 403, the same answer as for a collection that does not exist.
    for collection in (other, "no-such-collection"):
        p.refused("POST", "/v1/search", 403, "collection_forbidden", json={"query": "budget", "collections": [collection]})
        p.refused("POST", "/v1/chat", 403, "collection_forbidden", json={"message": "budget?", "collections": [collection]})
        p.refused("POST", "/v1/chat", 403, "collection_forbidden",
                  json={"message": "budget?", "collections": [me, collection], "stream": True})
        p.refused("POST", "/v1/chat/completions", 403, "collection_forbidden",
                  json={"messages": [{"role": "user", "content": "budget?"}], "collections": [collection]})
        p.refused("POST", "/v1/tickets/draft", 403, "collection_forbidden",
                  json={"ticket": "What is the budget?", "collections": [collection]})
        p.refused("GET", "/v1/documents", 403, "collection_forbidden", params={"collection": collection})
        p.refused("POST", "/v1/documents", 403, "collection_forbidden", data={"collection": collection},
                  files=[("files", ("x.md", b"# X\n\nOverwrite attempt.", "text/markdown"))])

    # Asking about the other's subject matter, every way there is: answers and citations come from my own
    # collection only (or the documents do not answer).
    questions = [f"{kind} {topic}" for topic in TOPICS[other] for kind in
                 ("Who owns the", "What is the budget of the", "Which reference logs each")]
    for question in questions:
        for body in (
            {"query": question}, {"query": question, "k": 50, "mode": "bm25"}, {"query": question, "mode": "dense"},
            {"query": question, "documents": theirs["names"]}, {"query": question, "collections": [me]},
        ):
            hits = p.send("POST", "/v1/search", json=body).json()["results"]
            assert all(h["collection"] == me for h in hits), hits
        answer = p.send("POST", "/v1/chat", json={"message": question}).json()["answer"]
        assert all(c["collection"] == me for c in answer["citations"])
        p.send("POST", "/v1/chat", json={"message": question, "stream": True})
        p.send("POST", "/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
        p.send("POST", "/v1/chat/completions", json={"messages": [{"role": "user", "content": question}],
                                                     "stream": True, "collections": [me]})
        draft = p.send("POST", "/v1/tickets/draft", json={"ticket": f"Customer asks: {question}"}).json()
        assert all(c["collection"] == me for c in draft["citations"])

    # Listings show only my own things (and my own data is there: these checks can fail).
    assert {c["id"] for c in p.send("GET", "/v1/conversations", params={"limit": 200}).json()["conversations"]} \
        >= set(made[me]["conversations"])
    assert [c["name"] for c in p.send("GET", "/v1/collections").json()["collections"]] == [me]
    assert {d["id"] for d in p.send("GET", "/v1/documents").json()["documents"]} == set(made[me]["documents"])
    assert {j["id"] for j in p.send("GET", "/v1/jobs").json()["jobs"]} == set(made[me]["jobs"])
    assert p.send("GET", "/v1/me").json()["collections"] == [me]
    own_file = p.send("GET", f"/v1/documents/{made[me]['documents'][0]}/file")
    assert own_marker.encode() in own_file.content
    p.send("GET", "/v1/models")
    p.send("GET", "/metrics")
    assert p.count >= 150, p.count
