"""Language detectors on short posts: which English posts they would wrongly hold back,
which foreign posts they catch, and what a post costs.

English posts: the test splits of the English datasets (texts as posted: tweets, Reddit
comments, Flickr captions; a few of their tweets are in fact in other languages, so some
of what is "held back" there is right: the examples are printed) and the English posts of
tests/data/robustness.jsonl. Foreign
posts: the robustness set's non-English posts and the short posts below (written for this
benchmark, 24 languages). Each detector runs behind the same rules (model/language.py:
letters only, ``und`` under ``min_letters``, a foreign language named only at
``min_confidence``), at each confidence in ``--confidences``.

    pip install 'emostream[languages]'   # lingua and pycld2 beside py3langid
    python -m bench.language_detectors   # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import time

from bench import REPO
from bench.machine import machine
from emostream.model.language import BACKENDS, LanguageDetector, readable
from emostream.model.training.datasets import Dataset

ROBUSTNESS = REPO / "tests" / "data" / "robustness.jsonl"
ENGLISH_DATASETS = ("goemotions", "reddit-emotions", "mvsa-single", "twitter-ii", "flickr-fi-text")
FOREIGN = [
    ("es", "No puedo creer que hayan cancelado el concierto otra vez."),
    ("es", "Mañana vamos a la playa con mis primos."),
    ("es", "Me encanta este lugar, la comida es buenísima"),
    ("de", "Heute ist ein wunderschöner Tag im Park."),
    ("de", "Warum ist die Bahn immer zu spät?"),
    ("de", "Ich habe solche Angst vor der Prüfung morgen."),
    ("fr", "On se retrouve devant la gare à midi ?"),
    ("fr", "C'est vraiment dégoûtant, la cuisine était sale."),
    ("fr", "J'ai trop hâte de partir en vacances !"),
    ("it", "Che bella giornata, siamo andati al mare."),
    ("it", "Non ne posso più di questo traffico."),
    ("pt", "Hoje o dia foi muito cansativo no trabalho."),
    ("pt", "Que saudade da minha família!"),
    ("nl", "Wat een prachtig uitzicht vanaf de berg."),
    ("nl", "Ik heb geen zin meer in die regen."),
    ("sv", "Vi ses på fredag efter jobbet."),
    ("da", "Jeg er så træt af det her vejr."),
    ("no", "Det var en fantastisk konsert i går."),
    ("fi", "Olen todella iloinen uudesta työpaikasta."),
    ("pl", "Nie mogę uwierzyć, że znowu pada deszcz."),
    ("cs", "Dnes jsem měl hrozný den v práci."),
    ("hu", "Nagyon boldog vagyok ma reggel."),
    ("ro", "Sunt foarte supărat pe vecinul meu."),
    ("tr", "Bu film beni çok korkuttu."),
    ("id", "Aku senang sekali hari ini bisa bertemu teman lama."),
    ("vi", "Tôi rất buồn vì mất điện thoại."),
    ("ru", "Сегодня я весь день гулял по городу."),
    ("uk", "Мені дуже сумно без тебе."),
    ("el", "Σήμερα είμαι πολύ κουρασμένος."),
    ("ja", "明日は雨が降るそうです。"),
    ("ja", "めっちゃ怖かった"),
    ("zh", "这家餐厅的菜太难吃了。"),
    ("ko", "내일 같이 영화 볼래요?"),
    ("ar", "الطقس اليوم جميل جدا"),
    ("he", "אני כל כך שמח היום"),
    ("hi", "मुझे आज बहुत गुस्सा आया।"),
    ("th", "วันนี้อากาศร้อนมาก"),
]


def english_posts(per_dataset: int) -> list[str]:
    texts = []
    for name in ENGLISH_DATASETS:
        items = [i for i in Dataset.load(name).split("test") if i.text]
        texts += [i.text for i in items[:per_dataset]]
    rows = [json.loads(line) for line in ROBUSTNESS.read_text(encoding="utf-8").splitlines()]
    return texts + [r["text"] for r in rows if r["kind"] != "non-english"]


def foreign_posts() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in ROBUSTNESS.read_text(encoding="utf-8").splitlines()]
    return FOREIGN + [(r["language"], r["text"]) for r in rows if r["kind"] == "non-english"]


def measure(backend: str, confidence: float, english: list[str], foreign: list) -> dict:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    det = LanguageDetector(backend, min_confidence=confidence)
    det.detect("warm up the detector's models")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    held = [t for t in english if not readable(det.detect(t))]
    found = [(lang, det.detect(t)) for lang, t in foreign]
    seconds = time.perf_counter() - t0
    return {
        "detector": backend,
        "min_confidence": confidence,
        "english_posts": len(english),
        "english_held_back": len(held),
        "english_held_back_share": len(held) / len(english),
        "held_back_examples": held[:8],
        "foreign_posts": len(foreign),
        "foreign_caught": sum(not readable(got) for _, got in found),
        "foreign_language_right": sum(want == got for want, got in found),
        "foreign_missed": [
            t for (lang, t), (_, got) in zip(foreign, found, strict=True) if readable(got)
        ],
        "us_per_post": 1e6 * seconds / (len(english) + len(foreign)),
        "load_s": load_s,
        "rss_added_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-dataset", type=int, default=2000, help="English test posts each")
    ap.add_argument("--detectors", nargs="+", default=list(BACKENDS))
    ap.add_argument("--confidences", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    ap.add_argument("--json", default=str(REPO / "bench/results/language_detectors.json"))
    args = ap.parse_args()
    english, foreign = english_posts(args.per_dataset), foreign_posts()
    rows = []
    for backend in args.detectors:
        module = {"py3langid": "py3langid", "lingua": "lingua", "pycld2": "pycld2"}[backend]
        if importlib.util.find_spec(module) is None:  # probed without loading its model
            print(f"{backend}: not installed; pip install 'emostream[languages]'")
            continue
        for confidence in args.confidences:
            rows.append(measure(backend, confidence, english, foreign))
            r = rows[-1]
            print(
                f"{backend} at {confidence}: {r['english_held_back']} English held back, "
                f"{r['foreign_caught']}/{r['foreign_posts']} foreign caught",
                flush=True,
            )
    print(f"\n{len(english)} English posts, {len(foreign)} in other languages")
    print(
        "| detector | min confidence | English held back | foreign caught | "
        "language right | µs/post | load s | RSS added MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['detector']} | {r['min_confidence']} | {r['english_held_back']} "
            f"({100 * r['english_held_back_share']:.2f}%) | {r['foreign_caught']}/"
            f"{r['foreign_posts']} | {r['foreign_language_right']} | {r['us_per_post']:.0f} | "
            f"{r['load_s']:.2f} | {r['rss_added_mib']:.0f} |"
        )
    out = {"machine": machine("cpu"), "rows": rows}
    path = REPO / "bench/results/language_detectors.json" if not args.json else args.json
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
