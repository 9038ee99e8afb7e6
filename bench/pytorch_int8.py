#!/usr/bin/python3
"""PyTorch's own eager INT8 of a segqat network, timed for bench_inference.

Builds the network a segqat deploy graph describes (graph.json, written by
bench_inference) as a PyTorch module, quantizes it with PyTorch's own QAT
flow (fuse conv+ReLU, prepare_qat with the x86, onednn or fbgemm qconfig, a few
training passes on random images to set the ranges, convert), and then
serves timing requests so that bench_inference can interleave its rounds
with its own:

  pytorch_int8.py GRAPH.json --height H --width W --threads T [--qconfig x86|onednn|fbgemm]
  stdin:  "run" per timed inference, "quit" (or EOF) to end
  stdout: "ready ENGINE", then one line of milliseconds per "run"

As in torchvision's quantizable MobileNetV2, ReLU6 becomes ReLU so that it
fuses into the conv. The logits are dequantized before the bilinear resize,
which runs in float, as segqat's engine does. Errors go to stderr, exit 2.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao import quantization as tq


class GraphNet(nn.Module):
    def __init__(self, graph):
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict()
        self.fuse = []
        for i, n in enumerate(graph['nodes']):
            key = 'n%d' % i
            if n['kind'] == 'conv':
                conv = nn.Conv2d(n['in'], n['out'], n['kernel'], n['stride'], n['padding'],
                                 n['dilation'], n['groups'], bias=True)
                if n['act'] == 'none':
                    self.layers[key] = conv
                else:
                    self.layers[key] = nn.Sequential(conv, nn.ReLU())
                    self.fuse.append(['layers.%s.0' % key, 'layers.%s.1' % key])
            elif n['kind'] in ('add', 'concat'):
                self.layers[key] = nn.quantized.FloatFunctional()
            elif n['kind'] != 'resize':
                raise ValueError('node %s: kind %s is not supported here' % (n['name'], n['kind']))
        self.quant = tq.QuantStub()
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        values = {self.graph['input']: self.quant(x)}
        for i, n in enumerate(self.graph['nodes']):
            ins = [values[name] for name in n['inputs']]
            layer = self.layers['n%d' % i] if 'n%d' % i in self.layers else None
            if n['kind'] == 'conv':
                y = layer(ins[0])
            elif n['kind'] == 'add':
                y = layer.add(ins[0], ins[1])
            elif n['kind'] == 'concat':
                y = layer.cat(ins, 1)
            else:  # resize to the size of inputs[1]
                y = F.interpolate(self.dequant(ins[0]), size=ins[1].shape[2:], mode='bilinear',
                                  align_corners=False)
            values[n['output']] = y
        out = values[self.graph['output']]
        return out if not out.is_quantized else self.dequant(out)


def build(graph, qconfig, height, width):
    # The x86 qconfig runs on PyTorch's x86 engine (which picks fbgemm or
    # onednn per op); the others on the engine of their name.
    wanted = qconfig if qconfig in ('x86', 'onednn') else 'fbgemm'
    torch.backends.quantized.engine = wanted if wanted in \
        torch.backends.quantized.supported_engines else 'qnnpack'
    model = GraphNet(graph)
    model.eval()
    tq.fuse_modules(model, model.fuse, inplace=True)
    model.train()
    model.qconfig = tq.get_default_qat_qconfig(qconfig)
    tq.prepare_qat(model, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(2, 3, height // 4, width // 4))
    model.eval()
    return tq.convert(model), torch.backends.quantized.engine


def main():
    p = argparse.ArgumentParser()
    p.add_argument('graph')
    p.add_argument('--height', type=int, default=512)
    p.add_argument('--width', type=int, default=1024)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--qconfig', default='onednn', choices=['x86', 'onednn', 'fbgemm'])
    a = p.parse_args()
    try:
        with open(a.graph) as f:
            graph = json.load(f)
        torch.manual_seed(0)
        # Before the model is built: oneDNN fixes its threading when it
        # first runs (set afterwards, the timed runs took 2x as long here).
        torch.set_num_threads(a.threads)
        model, engine = build(graph, a.qconfig, a.height, a.width)
        x = torch.randn(1, 3, a.height, a.width).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            model(x)  # warm up
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print('pytorch_int8: %s' % e, file=sys.stderr)
        sys.exit(2)
    print('ready %s/%s' % (engine, a.qconfig), flush=True)
    with torch.no_grad():
        for line in sys.stdin:
            if line.strip() != 'run':
                break
            t0 = time.perf_counter()
            model(x)
            print('%.3f' % ((time.perf_counter() - t0) * 1e3), flush=True)


if __name__ == '__main__':
    main()
