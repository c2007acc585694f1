// The course's page harness, served by course_utils.browser_page.PageServer as /harness.js.
//
// A run's page loads onnxruntime-web's bundle, then this file, then the user's script
// (/user.js), so this file keeps its own fetch, JSON and clock before that script runs.
// Once the page has loaded, it:
//   1. reads /run/N/config.json: provider, threads, the inputs' dtype, shape and count, and how
//      many warm-up and timed passes to make;
//   2. sets ort.env.wasm (where the .wasm files are, how many threads) and creates the session
//      with the user's createSession(modelUrl, options) if the script defines one, else with
//      ort.InferenceSession.create(modelUrl, options);
//   3. calls the user's predict(session, item) once per item, item = {data, dims, index}
//      (data a Float32Array, or a Uint8ClampedArray for uint8 inputs), and keeps what it
//      returns: an array (or typed array) of finite numbers, the same length for every item;
//   4. makes `warmup` more passes untimed (V8 swaps optimised WebAssembly code in while the
//      first passes run), then times `rounds` passes over every item, each pass as a whole: a
//      page that is not cross-origin isolated gets a clock coarsened to 0.1 ms, longer than one
//      small model run;
//   5. POSTs the result to /results and opens the next page of the run, if any.
// A failure (the script, the model, an output) is posted as the result's error, never thrown.
'use strict';
(() => {
  const send = window.fetch.bind(window);
  const toJson = JSON.stringify;
  const clock = performance.now.bind(performance);
  const lines = [];  // what the page printed, e.g. onnxruntime-web's warnings
  const failures = [];  // uncaught errors, e.g. a syntax error in the user's script
  for (const level of ['log', 'info', 'warn', 'error']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      if (lines.length < 50) lines.push(`${level}: ${args.map(String).join(' ')}`.slice(0, 500));
      original(...args);
    };
  }
  window.addEventListener('error', (event) => {
    const file = String(event.filename || 'page').split('/').pop();
    failures.push(`${file} line ${event.lineno}: ${event.message}`);
  });
  const show = (text) => {
    const element = document.getElementById('status');
    if (element) element.textContent = text;
  };
  const describe = (error) =>
    (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 1500);

  function numbers(value, index, width, most) {
    if (value && typeof value === 'object' && 'dims' in value && 'data' in value) {
      throw new TypeError(`predict returned an ort.Tensor for item ${index}; return its numbers ` +
                          '(the tensor\'s .data)');
    }
    if (value instanceof BigInt64Array || value instanceof BigUint64Array) {
      throw new TypeError(`predict returned 64-bit integers (BigInt) for item ${index}; return ` +
                          'numbers');
    }
    if (!(Array.isArray(value) || ArrayBuffer.isView(value))) {
      const kind = value === null ? 'null' : typeof value;
      throw new TypeError(`predict returned ${kind} for item ${index}; return an array of ` +
                          'numbers (e.g. an output tensor\'s .data)');
    }
    const row = Array.from(value);
    if (row.length > most) {
      throw new RangeError(`predict returned ${row.length} numbers for item ${index}; at most ` +
                           `${most} are taken`);
    }
    if (width !== null && row.length !== width) {
      throw new RangeError(`predict returned ${row.length} numbers for item ${index} and ` +
                           `${width} for item 0; every item gets one output of the same size`);
    }
    row.forEach((x, j) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) {
        throw new TypeError(`predict returned ${String(x).slice(0, 40)} at position ${j} for ` +
                            `item ${index}; every output must be a finite number`);
      }
    });
    return row;
  }

  function clockStep() {  // the smallest step of performance.now() in this page, in ms
    let best = Infinity;
    for (let i = 0; i < 5; i += 1) {
      const first = clock();
      let next = clock();
      while (next === first) next = clock();
      best = Math.min(best, next - first);
    }
    return best;
  }

  async function webgpuProblem(info) {  // null when a WebGPU adapter is there
    if (!navigator.gpu) return 'this browser has no WebGPU (navigator.gpu is undefined)';
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return 'navigator.gpu.requestAdapter() found no GPU adapter in this browser';
    const about = adapter.info || {};
    info.adapter = [about.vendor, about.architecture, about.description]
      .filter(Boolean).join(' ') || 'unnamed adapter';
    info.fallback_adapter = Boolean(adapter.isFallbackAdapter || about.isFallbackAdapter);
    return null;
  }

  async function run(config, result) {
    const info = result.info;
    info.user_agent = navigator.userAgent;
    info.cross_origin_isolated = Boolean(self.crossOriginIsolated);
    info.hardware_concurrency = navigator.hardwareConcurrency || null;
    const shared = self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined';
    info.threads_used = config.threads > 1 && !shared ? 1 : config.threads;
    if (failures.length) throw new Error(`the script did not run: ${failures[0]}`);
    if (typeof ort === 'undefined') throw new Error('onnxruntime-web did not load');
    if (typeof predict !== 'function') {
      throw new Error('the script defines no function predict(session, item)');
    }
    if (config.provider === 'webgpu') {
      const problem = await webgpuProblem(info);
      if (problem) {
        result.status = 'skipped';
        result.error = problem;
        return;
      }
    }
    ort.env.wasm.wasmPaths = '/ort/';
    ort.env.wasm.numThreads = config.threads;
    ort.env.wasm.proxy = false;
    const options = {executionProviders: [config.provider]};
    let start = clock();
    const session = typeof createSession === 'function'
      ? await createSession('/model.onnx', options)
      : await ort.InferenceSession.create('/model.onnx', options);
    result.load_ms = clock() - start;
    const bytes = await (await send('/inputs.bin')).arrayBuffer();
    const all = config.dtype === 'uint8' ? new Uint8ClampedArray(bytes) : new Float32Array(bytes);
    const size = config.item_shape.reduce((a, b) => a * b, 1);
    const items = Array.from({length: config.count}, (_, i) => (
      {data: all.slice(i * size, (i + 1) * size), dims: config.item_shape.slice(), index: i}));
    const outputs = [];
    start = clock();
    for (const item of items) {
      const width = outputs.length ? outputs[0].length : null;
      outputs.push(numbers(await predict(session, item), item.index, width, config.max_values));
    }
    result.first_pass_ms = clock() - start;
    result.outputs = outputs;
    for (let pass = 0; pass < config.warmup; pass += 1) {
      show(`${config.label}: warming up, pass ${pass + 1} of ${config.warmup}`);
      for (const item of items) await predict(session, item);
    }
    for (let round = 0; round < config.rounds; round += 1) {
      show(`${config.label}: timing, round ${round + 1} of ${config.rounds}`);
      start = clock();
      for (const item of items) await predict(session, item);
      result.round_ms.push(clock() - start);
    }
  }

  async function main() {
    let config;
    try {
      config = await (await send('config.json')).json();
    } catch (error) {
      show(`this page has no run configuration (${describe(error)})`);
      return;
    }
    const result = {token: config.token, index: config.index, status: 'ok', info: {},
                    console: lines, round_ms: []};
    show(`onnxruntime-web ${config.version}, ${config.label}: running ${config.count} items`);
    try {
      await run(config, result);
    } catch (error) {
      result.status = 'error';
      result.error = describe(error);
      delete result.outputs;
    }
    result.clock_ms = clockStep();
    const reply = await send('/results', {method: 'POST', body: toJson(result),
                                          headers: {'Content-Type': 'application/json'}});
    const rounds = result.round_ms.slice().sort((a, b) => a - b);
    const perItem = rounds.length ? rounds[rounds.length >> 1] / config.count : null;
    show(`onnxruntime-web ${config.version}, ${config.label}: ` + (
      result.status !== 'ok' ? `${result.status}: ${result.error}`
        : `${config.count} items` + (perItem === null ? '' : `, ${perItem.toFixed(3)} ms each`)) +
      (reply.ok ? '' : ` (the result was refused: ${await reply.text()})`));
    if (config.next) location.replace(config.next);
  }

  window.addEventListener('load', () => { main(); });
})();
