"""Drift watch: a stream like the reference stays quiet; a stream from another domain raises the alert."""

from __future__ import annotations

import random

from assistant.api.metrics import Metrics
from assistant.drift import DriftWatch
from ingestion.embedder import HashEmbedder

TOPICS = ["hotel", "flight", "travel", "expense", "per diem", "booking", "train ticket", "mileage", "visa", "taxi"]
ASKS = ["What is the policy for {}?", "How do I claim my {} costs?", "Is {} covered on a business trip?",
        "Who approves {} for travel?", "What is the limit for {} abroad?"]
OTHER = ["Why was my card payment declined?", "How do I top up my account by bank transfer?",
         "My PIN is blocked, what now?", "Can I get a refund for a duplicate charge?", "How long does a SEPA transfer take?",
         "Why is there an exchange rate fee on my statement?", "How do I freeze a lost card?"]


def in_domain(rng, n):
    return [rng.choice(ASKS).format(rng.choice(TOPICS)) for _ in range(n)]


def test_a_stable_stream_stays_quiet_and_a_shift_raises_the_alert():
    rng = random.Random(0)
    metrics = Metrics(lambda: 0)
    watch = DriftWatch(HashEmbedder(256).embed, in_domain(rng, 300), window=30, alpha=0.01, on_update=metrics.observe_drift)
    stable = [watch.observe("hr", q, 0.7, False, False) for q in in_domain(rng, 60)]
    assert not any(f["alert"] for f in stable) and stable[-1]["p_value"] > 0.01
    shifted = [watch.observe("hr", q, 0.3, True, True) for q in (rng.choice(OTHER) for _ in range(30))]
    assert shifted[-1]["alert"] and shifted[-1]["unanswered_share"] == 1.0
    first = next(i for i, f in enumerate(shifted) if f["alert"])
    assert first < 20  # detected within 20 questions of the shift
    text = metrics.render().decode()
    assert 'ragtune_drift_alert{collection="hr"} 1.0' in text and "ragtune_unanswered_share" in text
    snapshot = watch.snapshot()
    assert snapshot["reference_questions"] > 0 and len(snapshot["collections"]["hr"]["history"]) == 90


def test_no_reference_means_no_test():
    watch = DriftWatch(HashEmbedder(64).embed, [], window=10)
    assert all(watch.observe("x", "anything", None, False, False)["p_value"] is None for _ in range(12))
