# Draws the plots of `segqat report` with matplotlib (Debian: python3-matplotlib).
# segqat embeds this file and runs it as
#   python3 -c <this file> report_data.json OUT_DIR
# It reads the data the client gathered from segqatd and writes PNG files
# into OUT_DIR, printing the name of each one it wrote.
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, out_dir, name):
    fig.tight_layout()
    fig.savefig(f"{out_dir}/{name}", dpi=110)
    plt.close(fig)
    print(name)


def curves(data, out_dir):
    runs = [c for c in data["curves"] if c["steps"]]
    if not runs:
        return
    fig, (loss_ax, miou_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for c in runs:
        if c["steps"]:
            loss_ax.plot(c["steps"], c["loss"], label=c["title"], linewidth=1.2)
        if c["eval_steps"]:
            miou_ax.plot(c["eval_steps"], c["eval_miou"], marker="o", markersize=3,
                         label=c["title"], linewidth=1.2)
    loss_ax.set(title="training loss", xlabel="global step of each run", ylabel="loss")
    miou_ax.set(title="val mIoU at each evaluation", xlabel="global step of each run",
                ylabel="mIoU")
    for ax in (loss_ax, miou_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    save(fig, out_dir, "curves.png")


def class_iou(data, out_dir):
    models = [m for m in data["models"] if m["class_iou"]]
    if not models:
        return
    names = data["class_names"]
    n = len(names)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * n + 2), 4.5))
    for i, m in enumerate(models):
        xs = [c + (i - (len(models) - 1) / 2) * width for c in range(n)]
        ax.bar(xs, m["class_iou"][:n], width=width, label=m["title"])
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set(title="IoU per class", ylabel="IoU", ylim=(0, 1))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, len(models)))
    save(fig, out_dir, "class_iou.png")


def sensitivity(data, out_dir):
    for s in data["sensitivity"]:
        layers = s["layers"][:25]
        if not layers:
            continue
        fig, ax = plt.subplots(figsize=(9, 0.28 * len(layers) + 1.6))
        drops = [100 * l["drop"] for l in layers]
        colors = ["tab:red" if l["name"] in s["suggested_pattern"] else "tab:blue"
                  for l in layers]
        ax.barh(range(len(layers)), drops, color=colors)
        ax.set_yticks(range(len(layers)))
        ax.set_yticklabels([l["name"] for l in layers], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(title=f"mIoU drop with one layer quantized ({s['title']}; red: suggested float)",
               xlabel="mIoU drop (points)")
        ax.grid(axis="x", alpha=0.3)
        save(fig, out_dir, s["png"])


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    out_dir = sys.argv[2]
    curves(data, out_dir)
    class_iou(data, out_dir)
    sensitivity(data, out_dir)


main()
