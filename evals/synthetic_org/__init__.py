"""A seeded, deterministic synthetic company for fairdraft's evals and demo.

`generate_org(out_dir, people=120, seed=7)` writes people.csv, records.jsonl and
ratings.csv in the stable ingest formats, plus labels.json with the planted truth (latent
performance, rating offsets, biased wording with matched controls, key evidence per
person and period). Text comes from the phrase banks under data/.
"""

from evals.synthetic_org.generate import OrgSummary, generate_org

__all__ = ["OrgSummary", "generate_org"]
