"""The HTTP server on tiny random-weight runs: answers equal the run's own, concurrent requests share model
calls, and every kind of bad input gets a 4xx JSON error while the server keeps serving."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _tiny_runs import CLASSIFY_DOCS, SOURCES, classifier_run, translation_run

from seq2seq_attn.serve.batching import MicroBatcher

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from seq2seq_attn.serve.app import create_app  # noqa: E402
from seq2seq_attn.serve.engines import Limits, load_engine  # noqa: E402


@pytest.fixture(scope="module")
def translation_dir(tmp_path_factory) -> Path:
    return translation_run(tmp_path_factory.mktemp("serve_tr"), seed=4)


def test_batcher_groups_concurrent_jobs_by_key_and_isolates_failures() -> None:
    calls: list[tuple] = []

    def compute(key, items):
        calls.append((key, list(items)))
        if "bad" in items:
            raise ValueError("bad item")
        return [f"{key}:{x}" for x in items]

    async def scenario(enabled: bool):
        batcher = MicroBatcher(compute, max_batch=5, max_wait_ms=50, enabled=enabled)
        await batcher.start()
        jobs = [batcher.submit("a", ["1", "2"]), batcher.submit("b", ["3"]), batcher.submit("a", ["4"]),
                batcher.submit("a", ["bad"]), batcher.submit("a", ["5", "6"])]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return results, batcher.stats

    results, stats = asyncio.run(scenario(True))
    assert results[:3] == [["a:1", "a:2"], ["b:3"], ["a:4"]] and results[4] == ["a:5", "a:6"]
    assert isinstance(results[3], ValueError)  # only the bad job fails
    assert all(len(items) <= 5 or len(items) == 1 for _, items in calls)
    assert ("a", ["1", "2", "4", "bad"]) in calls  # one call for the "a" jobs that fit, then retried one by one
    assert ("a", ["5", "6"]) in calls  # over max_batch: the rest runs in the next call
    assert stats.errors == 1 and stats.requests == 4  # the grouped call failed, its jobs ran alone
    calls.clear()
    results, stats = asyncio.run(scenario(False))
    assert results[0] == ["a:1", "a:2"] and stats.largest_call_requests == 1 and len(calls) == 5


def test_translate_equals_the_run_and_batches_concurrent_requests(translation_dir: Path) -> None:
    from seq2seq_attn.translation.lifecycle import load_run

    run = load_run(translation_dir, "cpu")
    expected = [run.detok(h[0].tokens) for h in run.translate(SOURCES[:8], 2)]
    app = create_app(load_engine(translation_dir, Limits()), max_batch=64, max_wait_ms=300)
    with TestClient(app) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda s: client.post("/translate", json={"sentences": [s], "beam": 2}),
                                    SOURCES[:8]))
        assert [a.status_code for a in answers] == [200] * 8
        assert [a.json()["translations"][0]["text"] for a in answers] == expected
        health = client.get("/health").json()
        assert health["batching"]["requests"] == 8 and health["batching"]["largest_call_requests"] > 1
        assert health["batching"]["calls"] < 8

        body = client.post("/translate", json={"sentences": [SOURCES[0], "", SOURCES[1]], "beam": 3, "n_best": 3,
                                               "alpha": 1.0, "attention": True, "alignments": True}).json()
        first, empty = body["translations"][0], body["translations"][1]
        assert len(first["hypotheses"]) == 3 and empty["text"] == ""
        scores = [h["score"] for h in first["hypotheses"]]
        assert scores == sorted(scores, reverse=True)
        h = first["hypotheses"][0]
        assert len(h["attention"]) == len(h["target_pieces"]) and len(h["attention"][0]) == len(h["source_pieces"])
        assert all(abs(sum(row) - 1) < 1e-3 for row in h["attention"])
        assert isinstance(h["alignment"], str) and all("-" in pair for pair in h["alignment"].split())
        assert client.get("/docs").status_code == 200
        assert "/translate" in client.get("/openapi.json").json()["paths"]


BAD = {
    "empty body": (b"", 422, "request body is empty"),
    "invalid JSON": (b'{"sentences": [', 422, "not valid JSON"),
    "invalid UTF-8": (b'{"sentences": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    "not an object": (b'["a"]', 422, "valid dictionary"),
    "sentences not a list": (b'{"sentences": "a"}', 422, "sentences: Input should be a valid list"),
    "a number as sentence": (b'{"sentences": [3]}', 422, "sentences.0: Input should be a valid string"),
    "no sentences": (b'{"sentences": []}', 422, "at least 1 item"),
    "unknown field": (b'{"sentences": ["a"], "beams": 2}', 422, "beams: Extra inputs"),
    "beam 0": (b'{"sentences": ["a"], "beam": 0}', 422, "beam: Input should be greater"),
    "beam over the limit": (b'{"sentences": ["a"], "beam": 50}', 422, "over the limit"),
    "n_best over the beam": (b'{"sentences": ["a"], "beam": 2, "n_best": 3}', 422, "larger than the beam"),
    "too many sentences": (b'{"sentences": ["a", "b", "c", "d", "e"]}', 413, "the limit is 4"),
    "over-long sentence": (b'{"sentences": ["' + b"a" * 401 + b'"]}', 413, "401 characters"),
    "longer than the model's positions": (b'{"sentences": ["' + b"x " * 150 + b'"]}', 422, "max_positions"),
    "huge body": (b'{"sentences": ["a"], "pad": "' + b"y" * 300_000 + b'"}', 413, "bytes is over the limit"),
}


def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving(translation_dir: Path) -> None:
    app = create_app(load_engine(translation_dir, Limits(max_items=4, max_chars=400)))
    with TestClient(app) as client:
        for name, (body, status, message) in BAD.items():
            r = client.post("/translate", content=body, headers={"content-type": "application/json"})
            assert r.status_code == status, (name, r.text)
            assert message in r.json()["error"] + " ".join(r.json()["details"]), (name, r.json())
        assert client.post("/classify", json={"texts": ["a"]}).status_code == 404
        assert client.post("/translate", json={"sentences": [SOURCES[0]]}).status_code == 200
        assert client.get("/health").json()["status"] == "ok"


def test_classify(tmp_path: Path) -> None:
    from seq2seq_attn.classification.lifecycle import load_run

    run_dir = classifier_run(tmp_path, "han")
    expected = load_run(run_dir, "cpu").explain(CLASSIFY_DOCS)
    with TestClient(create_app(load_engine(run_dir, Limits()))) as client:
        r = client.post("/classify", json={"texts": CLASSIFY_DOCS, "token_weights": True})
        assert r.status_code == 200
        for got, want in zip(r.json()["results"], expected):
            assert got["label"] == want.label and got["tokens"] == want.tokens
            assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-6)
            assert got["token_weights"] == pytest.approx(want.weights, abs=1e-5)
        plain = client.post("/classify", json={"texts": ["The film was great."]}).json()["results"][0]
        assert "token_weights" not in plain and sum(plain["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert client.post("/classify", json={"texts": [None]}).status_code == 422
        assert client.post("/translate", json={"sentences": ["a"]}).json()["error"].startswith("this server runs")
