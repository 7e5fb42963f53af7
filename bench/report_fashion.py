"""docs/results.md's table of the first commands on the full Fashion-MNIST (bench/fashion.py's result file),
beside the test accuracies that Fashion-MNIST's own benchmark table lists for comparable models."""

from tables import not_measured, origin, percent, table

# Quoted from the benchmark table in Fashion-MNIST's README (submitted results, official test split).
BENCHMARK = [
    ("MLP 256-128-100", "88.33%"),
    ("2 Conv + pooling", "91.6%"),
    ("2 Conv + pooling + ELU (PyTorch)", "90.3%"),
    ("2 Conv + pooling + BatchNorm", "93.4%"),
    ("2 Conv + 2 FC, random horizontal flips", "93.9%"),
    ("CNN with shortcuts, standardization + augmentation + random erasing", "94.7%"),
]
# Each best_*_fashion preset's target on the official test split, beside the table's entry it is measured against.
FASHION_TARGETS = {
    "best_mlp_fashion": ">= 90.0% (MLP 256-128-100: 88.33%)",
    "best_lenet_fashion": ">= 91.5% (2 Conv + pooling: 91.6%)",
    "best_cnn_fashion": ">= 93.0% (2 Conv + pooling + BatchNorm: 93.4%)",
    "best_lstm_fashion": ">= 90.5% (none listed)",
}
NEAREST = {"mlp": "MLP 256-128-100", "cnn": "2 Conv + pooling"}  # the table's closest entry to each model


def fashion_table(record: dict | None) -> str:
    if record is None:
        return not_measured("python bench/fashion.py --json bench/results/fashion.json")
    published = dict(BENCHMARK)
    rows = []
    for run in record["summary"]["runs"]:
        nearest = NEAREST.get(run["label"])
        compared = f"{nearest}: {published[nearest]}" if nearest else "-"
        measured = f"{percent(run['test_acc'])} ({percent(run['best_val_acc'])})"
        rows.append([f"`{run['command']}`", measured, str(run["epochs"]), f"{run['seconds']:.0f}", compared])
    header = ["command", "test (best val)", "epochs", "seconds", "Fashion-MNIST's benchmark table"]
    benchmark = table(["model in Fashion-MNIST's benchmark table", "test accuracy"], [list(b) for b in BENCHMARK])
    return f"{table(header, rows)}\n{origin(record)}\nThe dataset's own benchmark table, for comparison:\n\n{benchmark}"
