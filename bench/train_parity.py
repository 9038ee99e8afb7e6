"""Float training side by side: segqat-worker against PyTorch eager, the same
network, data, schedule and seeds. Prints per-epoch train loss and val mIoU
of both, the final difference per seed and its mean and spread.

The network is the seed's (DeepLabv3+ / MobileNetV2, output stride 16, no
ASPP, no decoder, a 1x1 last_conv with bias, bilinear logits), written again
below in PyTorch with segqat's layout (torchvision's MobileNetV2 blocks, the
1280-channel conv, dilation 2 from the first stride-removed block), so that
only the training differs. The schedule is the issue's: SGD momentum 0.9,
weight decay 4e-5 on every parameter, poly 0.9 per step from SOLVER.LR,
batch 8, horizontal flip only, images at their own size (AUG unpadding),
cross entropy over the labelled pixels, a fresh shuffle each epoch, the
last partial batch dropped, val mIoU after every epoch (segqat's metric:
the mean of the 19 classes' IoU).

  .venv/bin/python bench/train_parity.py build/bin/segqat-worker \\
      [--seeds 1 2 3] [--epochs 12] [--train 160] [--val 40] [--lr 0.05] \\
      [--bn-momentum 0.1] [--threads 2] [--plot docs/results/train_parity.png] \\
      [--qat-epochs 3] [--qat-lr 0.001] [--skip-pytorch] [--segqat KEY VALUE ...]

--bn-momentum is PyTorch's convention (running = (1-m) running + m batch);
segqat gets MODEL.BN_MOMENTUM 1 - m (PaddleSeg's convention, default 0.99,
i.e. m = 0.01).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, "configs", "deeplabv3p_mobilenetv2_synthetic.yaml")
NUM_CLASSES = 19
IGNORE = 255


# --- The network, as engine/models/ builds it -------------------------------

def conv_bn(cin, cout, k, stride=1, dilation=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 * dilation, dilation, groups,
                        bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, dilation, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers.append(conv_bn(hidden, hidden, 3, stride, dilation, hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class DeepLabMobileNetV2(nn.Module):
    STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, output_stride=16):
        super().__init__()
        features = [conv_bn(3, 32, 3, 2)]
        cin, current, dilation = 32, 2, 1
        for expand, cout, repeats, first_stride in self.STAGES:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                if stride > 1 and current * stride > output_stride:
                    dilation *= stride
                    stride = 1
                else:
                    current *= stride
                features.append(InvertedResidual(cin, cout, stride, dilation, expand))
                cin = cout
        features.append(conv_bn(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.last_conv = nn.Conv2d(1280, NUM_CLASSES, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.last_conv.weight, 0.0, 0.01)

    def forward(self, x):
        y = self.last_conv(self.features(x))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


# --- Data -------------------------------------------------------------------

def load_split(data_dir, list_name):
    images, labels = [], []
    with open(os.path.join(data_dir, list_name)) as f:
        for line in f:
            if not line.strip():
                continue
            img, lab = line.split()
            rgb = np.asarray(Image.open(os.path.join(data_dir, img)).convert("RGB"), np.float32)
            images.append((rgb / 255.0 - 0.5) / 0.5)
            labels.append(np.asarray(Image.open(os.path.join(data_dir, lab)), np.int64))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(np.stack(labels))


def miou(model, x, y, batch=8):
    model.eval()
    cm = torch.zeros(NUM_CLASSES * NUM_CLASSES, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            pred = model(x[i:i + batch]).argmax(1)
            lab = y[i:i + batch]
            keep = lab != IGNORE
            cm += torch.bincount(lab[keep] * NUM_CLASSES + pred[keep],
                                 minlength=NUM_CLASSES * NUM_CLASSES)
    cm = cm.view(NUM_CLASSES, NUM_CLASSES).double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.zeros_like(tp))
    return iou.mean().item()


def train_pytorch(data, seed, args):
    torch.manual_seed(seed)
    xt, yt = load_split(data, "train_list.txt")
    xv, yv = load_split(data, "val_list.txt")
    model = DeepLabMobileNetV2()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = args.bn_momentum
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=4e-5)
    steps_per_epoch = len(xt) // args.batch
    total = steps_per_epoch * args.epochs
    step, curve = 0, []
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x, y = xt[idx].clone(), yt[idx].clone()
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip] = x[flip].flip(3)
            y[flip] = y[flip].flip(2)
            for g in opt.param_groups:
                g["lr"] = args.lr * (1 - step / total) ** 0.9
            loss = F.cross_entropy(model(x), y, ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        curve.append((epoch, float(np.mean(losses)), miou(model, xv, yv)))
        print("    pytorch epoch %2d  loss %.4f  mIoU %.4f" % curve[-1], flush=True)
    return curve


def data_overrides(data, args):
    """The dataset, images at their own size (flip only) and batch-norm momentum."""
    size = "(%d, %d)" % (args.width, args.height)
    return ["DATASET.DATA_DIR", data,
            "DATASET.TRAIN_FILE_LIST", os.path.join(data, "train_list.txt"),
            "DATASET.VAL_FILE_LIST", os.path.join(data, "val_list.txt"),
            "DATASET.TEST_FILE_LIST", os.path.join(data, "val_list.txt"),
            "AUG.AUG_METHOD", "unpadding", "AUG.FIX_RESIZE_SIZE", size,
            "TRAIN_CROP_SIZE", size, "EVAL_CROP_SIZE", size,
            "MODEL.BN_MOMENTUM", repr(1 - args.bn_momentum)]


def train_segqat(worker, data, seed, work, args):
    save = os.path.join(work, "segqat")
    cmd = [worker, "train", "--cfg", CFG, "--do_eval", "--log_steps", "1"] + \
        data_overrides(data, args) + [
            "BATCH_SIZE", str(args.batch), "SOLVER.LR", str(args.lr),
            "SOLVER.NUM_EPOCHS", str(args.epochs), "TRAIN.SNAPSHOT_EPOCH", "1",
            "TRAIN.SEED", str(seed), "TRAIN.MODEL_SAVE_DIR", save] + args.segqat
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        sys.stdout.write(p.stdout[-4000:])
        raise SystemExit("segqat-worker train failed")
    losses, curve, epoch = {}, [], 0
    for line in p.stdout.splitlines():
        m = re.search(r"epoch=(\d+) step=\d+ lr=[\d.e-]+ loss=([\d.]+)", line)
        if m:
            epoch = int(m.group(1))
            losses.setdefault(epoch, []).append(float(m.group(2)))
        m = re.search(r"\[EVAL\] #image=\d+ acc=[\d.]+ IoU=([\d.]+)", line)
        if m:
            curve.append((epoch, float(np.mean(losses.get(epoch, [0]))), float(m.group(1))))
            print("    segqat  epoch %2d  loss %.4f  mIoU %.4f" % curve[-1], flush=True)
    return curve


PLOT = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
results, path = json.load(open(sys.argv[1])), sys.argv[2]
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
for seed, sq, pt in results:
    for curve, style in ((sq, "b-"), (pt, "r--")):
        ax[0].plot([c[0] for c in curve], [c[1] for c in curve], style, alpha=0.6)
        ax[1].plot([c[0] for c in curve], [c[2] for c in curve], style, alpha=0.6)
ax[0].set_title("train loss (epoch mean)")
ax[1].set_title("val mIoU")
for a in ax:
    a.set_xlabel("epoch")
    a.plot([], [], "b-", label="segqat")
    a.plot([], [], "r--", label="PyTorch eager")
    a.legend()
fig.tight_layout()
fig.savefig(path, dpi=90)
"""


def plot(results, path):
    """Draws the curves with the system Python's matplotlib (python3-matplotlib)."""
    import json
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(results, f)
    try:
        subprocess.run(["/usr/bin/python3", "-c", PLOT, f.name, path], check=True)
        print("plot:", path)
    finally:
        os.unlink(f.name)


def qat_segqat(worker, data, work, args):
    """segqat's QAT from its final float model (last_conv float) for
    args.qat_epochs at args.qat_lr, then its final model simulated and
    converted: (float, simulated, converted) mIoU."""
    ds = data_overrides(data, args) + args.segqat
    float_model = os.path.join(work, "segqat", "final")
    qat_dir = os.path.join(work, "qat")
    subprocess.run([worker, "train", "--quant", "--not_quant_pattern", "last_conv", "--cfg", CFG]
                   + ds + ["BATCH_SIZE", str(args.batch), "SOLVER.LR", str(args.qat_lr),
                           "SOLVER.NUM_EPOCHS", str(args.qat_epochs),
                           "TRAIN.PRETRAINED_MODEL_DIR", float_model,
                           "TRAIN.MODEL_SAVE_DIR", qat_dir], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    out = []
    for model, convert in ((float_model, False), (os.path.join(qat_dir, "final"), False),
                           (os.path.join(qat_dir, "final"), True)):
        js = os.path.join(work, "m.json")
        subprocess.run([worker, "eval", "--cfg", CFG, "--metrics-json", js] +
                       (["--convert"] if convert else []) + ["TEST.TEST_MODEL", model] + ds,
                       check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        with open(js) as f:
            out.append(json.load(f)["miou"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("worker")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--train", type=int, default=160)
    ap.add_argument("--val", type=int, default=40)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--bn-momentum", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default="")
    ap.add_argument("--qat-epochs", type=int, default=3,
                    help="segqat QAT after the float run (0: none); PyTorch's QAT is not run")
    ap.add_argument("--qat-lr", type=float, default=0.001)
    ap.add_argument("--skip-pytorch", action="store_true",
                    help="segqat only (to compare a segqat setting with an earlier PyTorch run)")
    ap.add_argument("--segqat", nargs="*", default=[], help="more KEY VALUE overrides for segqat")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results, qat = [], []
    for seed in args.seeds:
        work = tempfile.mkdtemp(prefix="segqat_parity_")
        try:
            data = os.path.join(work, "data")
            subprocess.run([args.worker, "make-dataset", "--out", data, "--train", str(args.train),
                            "--val", str(args.val), "--height", str(args.height), "--width",
                            str(args.width), "--seed", str(seed)], check=True,
                           stdout=subprocess.DEVNULL)
            print("seed %d" % seed, flush=True)
            t0 = time.time()
            sq = train_segqat(args.worker, data, seed, work, args)
            t1 = time.time()
            pt = sq if args.skip_pytorch else train_pytorch(data, seed, args)
            t2 = time.time()
            results.append((seed, sq, pt))
            if args.qat_epochs > 0:
                fp, sim, conv = qat_segqat(args.worker, data, work, args)
                qat.append((fp, sim, conv))
                print("  seed %d segqat QAT %d epochs: float %.4f  simulated %.4f  converted %.4f"
                      "  QAT-float %+.2f  converted-simulated %+.2f points"
                      % (seed, args.qat_epochs, fp, sim, conv, 100 * (sim - fp),
                         100 * (conv - sim)), flush=True)
            print("  seed %d final mIoU  segqat %.4f  pytorch %.4f  difference %+.2f points  "
                  "(%.0f s / %.0f s)" % (seed, sq[-1][2], pt[-1][2], 100 * (sq[-1][2] - pt[-1][2]),
                                         t1 - t0, t2 - t1), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    diffs = [100 * (sq[-1][2] - pt[-1][2]) for _, sq, pt in results]
    print("segqat - pytorch, final mIoU over %d seeds: mean %+.2f points, min %+.2f, max %+.2f"
          % (len(diffs), np.mean(diffs), min(diffs), max(diffs)))
    if qat:
        print("segqat QAT-float: %s points; converted-simulated: %s points"
              % (" ".join("%+.2f" % (100 * (s - f)) for f, s, _ in qat),
                 " ".join("%+.2f" % (100 * (c - s)) for _, s, c in qat)))
    if args.plot:
        plot(results, args.plot)

if __name__ == "__main__":
    main()
