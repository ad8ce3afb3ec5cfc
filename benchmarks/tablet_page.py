"""How fast the store tablet page loads in Chromium on loopback.

    .venv/bin/python benchmarks/tablet_page.py          # 10,000 customers, 4,000 items

Builds a store like benchmarks/api_load.py does (synthetic data, ALS and churn models as
champion), serves it, signs a Chromium tablet (1280x800) in, and loads 30 different
customers' pages (the 360 view, in-stock suggestions, offers) one after another:
navigation start to the load event. Results: benchmarks/results/tablet_page.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from api_load import build, free_port, wait_for
from playwright.sync_api import sync_playwright

from service.settings import ApiKey

ROOT = Path(__file__).resolve().parents[1]
TABLET = "bench-tablet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "tablet_page.md"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omni-tablet-"))
    settings, _ = build(work, args.customers, args.items)
    keys = {
        **settings.api_keys,
        TABLET: ApiKey(
            name="tablet", scopes=["recommend", "profile:read", "events:write"], store_id="S001"
        ),
    }
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": settings.database_url,
        "OMNI_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "OMNI_API_KEYS": json.dumps({k: v.model_dump() for k, v in keys.items()}),
    }
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("omni")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "omni.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    customers = pd.read_parquet(work / "data" / "customers.parquet")["customer_id"]
    chosen = customers.sample(args.pages, random_state=0).tolist()
    times = []
    try:
        wait_for(f"{base}/ready", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=os.environ.get("OMNI_CHROMIUM") or shutil.which("chromium"),
                args=["--no-sandbox"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=base)
            page.goto("/tablet")
            page.get_by_label("Tablet key").fill(TABLET)
            page.get_by_role("button", name="Sign in").click()
            page.goto(f"/tablet/customers/{chosen[0]}")  # warm up
            for customer in chosen:
                page.goto(f"/tablet/customers/{customer}")
                timing = page.evaluate(
                    "() => { const t = performance.getEntriesByType('navigation')[0];"
                    " return t.loadEventEnd - t.startTime; }"
                )
                times.append(float(timing))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(times)
    lines = [
        "# Tablet page load",
        "",
        f"`.venv/bin/python benchmarks/tablet_page.py`: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Chromium (Debian), {time.strftime('%Y-%m-%d')}. "
        f"{args.customers:,} synthetic customers, {args.items:,} items; {len(ms)} customer "
        "pages loaded one after another, navigation start to the load event, at 1280x800.",
        "",
        "| pages | median ms | p95 ms | max ms |",
        "| --- | --- | --- | --- |",
        f"| {len(ms)} | {np.median(ms):.0f} | {np.percentile(ms, 95):.0f} | {ms.max():.0f} |",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
