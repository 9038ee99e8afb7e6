#!/usr/bin/env node
// Runs an exported segmentation model with ONNX Runtime (CPU) over a folder of
// raw inputs, for comparison against the C++ engine in the export tests.
//
//   node run_onnx.js MODEL.onnx INPUT_DIR OUTPUT_DIR [--threads N] [--bench ITERS] [--serve]
//
// INPUT_DIR:  NAME.f32  raw little-endian float32, NCHW, batch 1
//             NAME.json {"shape":[1,3,H,W]}
// OUTPUT_DIR: NAME.labels      uint8 argmax over C per pixel (H*W bytes, row-major)
//             NAME.logits.f32  raw little-endian float32 logits [1,C,H,W]
// --bench ITERS: after writing the outputs, 2 warmup runs then ITERS timed runs
//             on the first input; prints one JSON line on stdout.
// --serve: after writing the outputs, prints "ready" and then the ms of one
//             run of the first input for each "run" line on stdin.
// Any error: message on stderr naming the file, exit code 2.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const INPUT_NAME = 'image';
const OUTPUT_NAME = 'logits';
const WARMUP_RUNS = 2;
const EXIT_ERROR = 2;

const USAGE =
  'usage: node run_onnx.js MODEL.onnx INPUT_DIR OUTPUT_DIR [--threads N] [--bench ITERS] [--serve]';

class HarnessError extends Error {}

function fail(msg) {
  throw new HarnessError(msg);
}

function parsePositiveInt(flag, value) {
  if (value === undefined || !/^[0-9]+$/.test(value) || Number(value) < 1) {
    fail(`${flag} needs a positive integer, got ${JSON.stringify(value)}\n${USAGE}`);
  }
  return Number(value);
}

function parseArgs(argv) {
  const positional = [];
  const opts = { threads: 1, bench: 0, serve: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--threads') opts.threads = parsePositiveInt(a, argv[++i]);
    else if (a === '--bench') opts.bench = parsePositiveInt(a, argv[++i]);
    else if (a === '--serve') opts.serve = true;
    else if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    else if (a.startsWith('--')) fail(`unknown option ${a}\n${USAGE}`);
    else positional.push(a);
  }
  if (positional.length !== 3) fail(USAGE);
  [opts.model, opts.inputDir, opts.outputDir] = positional;
  return opts;
}

// Little-endian float32 file bytes -> Float32Array (own, aligned buffer).
function decodeF32(buf) {
  const n = buf.length / 4;
  if (os.endianness() === 'LE') {
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

// Float32Array -> little-endian bytes.
function encodeF32(arr) {
  if (os.endianness() === 'LE') return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  const out = Buffer.alloc(arr.length * 4);
  for (let i = 0; i < arr.length; i++) out.writeFloatLE(arr[i], i * 4);
  return out;
}

// Reads every NAME.f32 + NAME.json pair in dir, sorted by name.
function loadInputs(dir) {
  let names;
  try {
    names = fs.readdirSync(dir).filter((f) => f.endsWith('.f32')).sort();
  } catch (e) {
    fail(`cannot read input dir ${dir}: ${e.message}`);
  }
  if (names.length === 0) fail(`no .f32 inputs in ${dir}`);
  return names.map((file) => {
    const name = file.slice(0, -'.f32'.length);
    const dataPath = path.join(dir, file);
    const metaPath = path.join(dir, name + '.json');
    let shape;
    try {
      shape = JSON.parse(fs.readFileSync(metaPath, 'utf8')).shape;
    } catch (e) {
      fail(`cannot read shape from ${metaPath}: ${e.message}`);
    }
    if (!Array.isArray(shape) || shape.length !== 4 || shape[0] !== 1 ||
        !shape.every((d) => Number.isInteger(d) && d > 0)) {
      fail(`${metaPath}: "shape" must be [1,C,H,W] of positive integers, got ${JSON.stringify(shape)}`);
    }
    let buf;
    try {
      buf = fs.readFileSync(dataPath);
    } catch (e) {
      fail(`cannot read input ${dataPath}: ${e.message}`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (buf.length !== count * 4) {
      fail(`${dataPath}: ${buf.length} bytes, shape ${JSON.stringify(shape)} needs ${count * 4}`);
    }
    return { name, dataPath, shape, data: decodeF32(buf) };
  });
}

// Per-pixel argmax over C of NCHW [1,C,H,W]; ties and NaN resolve as numpy.argmax
// does (first maximum; first NaN wins).
function argmaxLabels(data, c, hw) {
  const labels = Buffer.alloc(hw);
  for (let p = 0; p < hw; p++) {
    let best = data[p];
    let arg = 0;
    for (let k = 1; k < c && best === best; k++) {
      const v = data[k * hw + p];
      if (v > best || v !== v) { best = v; arg = k; }
    }
    labels[p] = arg;
  }
  return labels;
}

async function runOne(session, ort, input) {
  const feeds = { [INPUT_NAME]: new ort.Tensor('float32', input.data, input.shape) };
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    fail(`inference failed on ${input.dataPath}: ${e.message}`);
  }
  return results[OUTPUT_NAME];
}

function median(sorted) {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  if (!fs.existsSync(opts.model)) fail(`model not found: ${opts.model}`);
  const inputs = loadInputs(opts.inputDir);

  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (run scripts/install-ort.sh): ${e.message}`);
  }

  let session;
  try {
    session = await ort.InferenceSession.create(opts.model, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: ['cpu'],
    });
  } catch (e) {
    fail(`cannot load model ${opts.model}: ${e.message}`);
  }
  if (!session.inputNames.includes(INPUT_NAME)) {
    fail(`model ${opts.model} has no input "${INPUT_NAME}" (inputs: ${session.inputNames.join(', ')})`);
  }
  if (!session.outputNames.includes(OUTPUT_NAME)) {
    fail(`model ${opts.model} has no output "${OUTPUT_NAME}" (outputs: ${session.outputNames.join(', ')})`);
  }

  fs.mkdirSync(opts.outputDir, { recursive: true });
  for (const input of inputs) {
    const out = await runOne(session, ort, input);
    const dims = out.dims;
    if (out.type !== 'float32' || dims.length !== 4 || dims[0] !== 1) {
      fail(`model ${opts.model}: output "${OUTPUT_NAME}" is ${out.type} [${dims}], expected float32 [1,C,H,W]`);
    }
    const [, c, h, w] = dims;
    if (c > 256) fail(`model ${opts.model}: ${c} classes do not fit uint8 labels`);
    const base = path.join(opts.outputDir, input.name);
    fs.writeFileSync(base + '.labels', argmaxLabels(out.data, c, h * w));
    fs.writeFileSync(base + '.logits.f32', encodeF32(out.data));
  }

  if (opts.serve) {
    // For bench_inference: "ready", then the ms of one run of the first input
    // per "run" line on stdin, until another line or EOF.
    const first = inputs[0];
    process.stdout.write('ready onnxruntime-node\n');
    const lines = require('readline').createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (line.trim() !== 'run') break;
      const t0 = process.hrtime.bigint();
      await runOne(session, ort, first);
      process.stdout.write(`${Number(process.hrtime.bigint() - t0) / 1e6}\n`);
    }
    lines.close();
    return;
  }

  if (opts.bench > 0) {
    const first = inputs[0];
    for (let i = 0; i < WARMUP_RUNS; i++) await runOne(session, ort, first);
    const times = [];
    for (let i = 0; i < opts.bench; i++) {
      const t0 = process.hrtime.bigint();
      await runOne(session, ort, first);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const round = (ms) => Math.round(ms * 1000) / 1000;
    process.stdout.write(JSON.stringify({
      ort_ms_median: round(median(times)),
      ort_ms_min: round(times[0]),
      iters: opts.bench,
    }) + '\n');
  }

  await session.release();
}

main().catch((e) => {
  process.stderr.write(`run_onnx: ${e instanceof HarnessError ? e.message : e.stack || e}\n`);
  process.exit(EXIT_ERROR);
});
