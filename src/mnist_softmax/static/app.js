// mnist-softmax drawing page: the model's exact computation, in the browser.
// Preprocessing mirrors preprocess.py (to_model_input, deskew) step for step; the model is logits = W x + b.
"use strict";
(function () {
  const M = JSON.parse(document.getElementById("model").textContent);
  const K = M.classes.length, H = M.shape[0], W = M.shape[1], D = H * W;
  const coef = new Float32Array(Uint8Array.from(atob(M.coef), c => c.charCodeAt(0)).buffer); // (K, D)
  const bias = M.intercept;

  // ---------------------------------------------------------------- preprocessing (as preprocess.py)
  function median(values) { // as numpy.median: the middle value, or the mean of the two middle values
    const a = Float64Array.from(values), n = a.length, k = n >> 1;
    let lo = 0, hi = n - 1;
    while (lo < hi) { // quickselect: afterwards a[k] is the k-th smallest and a[0..k-1] are no larger
      const pivot = a[(lo + hi) >> 1];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
      }
      if (k <= j) hi = j; else if (k >= i) lo = i; else break;
    }
    if (n % 2) return a[k];
    let below = -Infinity;
    for (let i = 0; i < k; i++) if (a[i] > below) below = a[i];
    return (below + a[k]) / 2;
  }
  const halfUp = x => Math.floor(x + 0.5);

  function areaWeights(nIn, nOut) { // (nOut, nIn), rows sum to 1
    const w = [];
    const step = nIn / nOut;
    for (let o = 0; o < nOut; o++) {
      const lo = o * step, hi = (o + 1) * step, row = new Float64Array(nIn);
      let sum = 0;
      for (let i = Math.floor(lo); i < Math.min(nIn, Math.ceil(hi)); i++) {
        const overlap = Math.max(0, Math.min(hi, i + 1) - Math.max(lo, i));
        row[i] = overlap; sum += overlap;
      }
      for (let i = 0; i < nIn; i++) row[i] /= sum;
      w.push(row);
    }
    return w;
  }

  function areaResize(img, h, w, height, width) {
    const ry = areaWeights(h, height), rx = areaWeights(w, width);
    const tmp = new Float64Array(height * w); // ry @ img
    for (let o = 0; o < height; o++) for (let i = 0; i < h; i++) {
      const a = ry[o][i];
      if (a) for (let x = 0; x < w; x++) tmp[o * w + x] += a * img[i * w + x];
    }
    const out = new Float64Array(height * width); // tmp @ rx.T
    for (let o = 0; o < height; o++) for (let q = 0; q < width; q++) {
      let s = 0;
      const r = rx[q];
      for (let x = 0; x < w; x++) if (r[x]) s += tmp[o * w + x] * r[x];
      out[o * width + q] = s;
    }
    return out;
  }

  // The steps both conventions share (preprocess.py's _ink_level and _crop): background from the median, a noise floor,
  // and the crop to the ink; null when nothing stands out from the paper.
  function inkCrop(ink, h, w) {
    const background = median(ink);
    let max = -Infinity;
    for (const v of ink) if (v > max) max = v;
    const contrast = max - background;
    if (contrast < 0.15) return null;
    const level = new Float64Array(ink.length);
    let total = 0, r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let i = 0; i < ink.length; i++) {
      let v = Math.min(1, Math.max(0, (ink[i] - background) / contrast));
      v = Math.min(1, Math.max(0, (v - 0.3) / 0.7));
      level[i] = v; total += v;
      if (v > 0) {
        const y = Math.floor(i / w), x = i % w;
        r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x);
      }
    }
    if (total < 2) return null;
    const ch = r1 - r0 + 1, cw = c1 - c0 + 1, crop = new Float64Array(ch * cw);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = level[(y + r0) * w + x + c0];
    return { crop, ch, cw };
  }

  // grey (h*w, 0..1, ink bright) -> MNIST-style (H*W) or null when blank; to_model_input in preprocess.py
  function toModelInput(ink, h, w) {
    const found = inkCrop(ink, h, w);
    if (!found) return null;
    const { crop, ch, cw } = found;
    const box = Math.max(1, halfUp(Math.min(H, W) * 20 / 28));
    const ratio = box / Math.max(ch, cw);
    const height = Math.max(1, halfUp(ch * ratio)), width = Math.max(1, halfUp(cw * ratio));
    const resized = areaResize(crop, ch, cw, height, width);
    const inked = resized.filter(v => v > 0);
    const scale = Math.max(inked.length ? median(inked) : 1, 1e-6);
    let mass = 0, my = 0, mx = 0;
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      const v = Math.min(1, Math.max(0, resized[y * width + x] / scale));
      resized[y * width + x] = v; mass += v; my += v * y; mx += v * x;
    }
    const top = Math.min(Math.max(halfUp(H / 2 - my / mass), 0), H - height);
    const left = Math.min(Math.max(halfUp(W / 2 - mx / mass), 0), W - width);
    const out = new Float64Array(D);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[(y + top) * W + x + left] = resized[y * width + x];
    return out;
  }

  // to_digits_input in preprocess.py: scikit-learn's 8x8 digits, a 32x32 bitmap filling the frame, 4x4 counts / 16
  function toDigitsInput(ink, h, w) {
    const found = inkCrop(ink, h, w);
    if (!found) return null;
    const { crop, ch, cw } = found;
    const BH = 4 * H, BW = 4 * W, ratio = Math.min(BH, BW) / Math.max(ch, cw);
    const height = Math.max(1, halfUp(ch * ratio)), width = Math.max(1, halfUp(cw * ratio));
    const resized = areaResize(crop, ch, cw, height, width);
    const inked = resized.filter(v => v > 0);
    const strength = Math.max(inked.length ? median(inked) : 1, 1e-6);
    const top = Math.floor((BH - height) / 2), left = Math.floor((BW - width) / 2);
    const out = new Float64Array(D);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      if (resized[y * width + x] >= 0.5 * strength) out[((y + top) >> 2) * W + ((x + left) >> 2)] += 1 / 16;
    }
    return out;
  }

  // fashion_input in preprocess.py: Fashion-MNIST's steps on RGB (0-255, h*w*4): trim by the corner's colour,
  // subsample the longest edge to the field, sharpen, extend centred, negate, greyscale
  function toFashionInput(rgba, h, w) {
    const cr = rgba[0], cg = rgba[1], cb = rgba[2], limit = 0.05 * 255 * Math.sqrt(3);
    let r0 = h, r1 = -1, c0 = w, c1 = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      const d = Math.sqrt((rgba[i] - cr) ** 2 + (rgba[i + 1] - cg) ** 2 + (rgba[i + 2] - cb) ** 2);
      if (d > limit) { r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x); }
    }
    if (r1 < 0) return null;
    const ch = r1 - r0 + 1, cw = c1 - c0 + 1, ratio = Math.min(H, W) / Math.max(ch, cw);
    const height = Math.min(H, Math.max(1, halfUp(ch * ratio))), width = Math.min(W, Math.max(1, halfUp(cw * ratio)));
    const small = [];
    for (let c = 0; c < 3; c++) {
      const plane = new Float64Array(height * width);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
        const sy = r0 + Math.floor((y + 0.5) * ch / height), sx = c0 + Math.floor((x + 0.5) * cw / width);
        plane[y * width + x] = rgba[4 * (sy * w + sx) + c];
      }
      small.push(plane);
    }
    const k1 = Math.exp(-0.5), kernel = [k1 / (1 + 2 * k1), 1 / (1 + 2 * k1), k1 / (1 + 2 * k1)];
    const clampY = y => Math.min(height - 1, Math.max(0, y)), clampX = x => Math.min(width - 1, Math.max(0, x));
    const out = new Float64Array(D), corner = [cr, cg, cb], luma = [0.299, 0.587, 0.114];
    const top = Math.floor((H - height) / 2), left = Math.floor((W - width) / 2);
    const grey = new Float64Array(D);
    for (let c = 0; c < 3; c++) {
      const p = small[c], rows = new Float64Array(height * width);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += kernel[j] * p[clampY(y + j - 1) * width + x];
        rows[y * width + x] = s;
      }
      for (let i = 0; i < D; i++) grey[i] += luma[c] * corner[c];
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
        let blur = 0;
        for (let j = 0; j < 3; j++) blur += kernel[j] * rows[y * width + clampX(x + j - 1)];
        const sharp = Math.min(255, Math.max(0, 2 * p[y * width + x] - blur));
        grey[(y + top) * W + x + left] += luma[c] * (sharp - corner[c]);
      }
    }
    for (let i = 0; i < D; i++) out[i] = Math.min(1, Math.max(0, (255 - grey[i]) / 255));
    return out;
  }

  // the model's convention (preprocess.convention_of): how a drawing becomes its input
  function toInput() {
    if (M.convention === "fashion") return toFashionInput(ctx.getImageData(0, 0, pad.width, pad.height).data, pad.height, pad.width);
    const ink = readPad();
    return M.convention === "digits" ? toDigitsInput(ink, pad.height, pad.width) : toModelInput(ink, pad.height, pad.width);
  }

  // deskew in preprocess.py: shear away the x-y covariance, centre of mass to the centre, bilinear sampling
  function deskew(img) {
    let mass = 0, sy = 0, sx = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) { const v = img[y * W + x]; mass += v; sy += v * y; sx += v * x; }
    if (mass <= 0) return Float64Array.from(img);
    const cy = sy / mass, cx = sx / mass;
    let vy = 0, cov = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const v = img[y * W + x];
      vy += v * (y - cy) * (y - cy); cov += v * (x - cx) * (y - cy);
    }
    vy /= mass; cov /= mass;
    const alpha = Math.min(1, Math.max(-1, vy > 1e-6 ? cov / vy : 0));
    const at = (y, x) => (y >= 0 && y < H && x >= 0 && x < W) ? img[y * W + x] : 0;
    const out = new Float64Array(D);
    for (let y = 0; y < H; y++) {
      const row = y + cy - H / 2, col = alpha * (y - H / 2) + (cx - W / 2);
      const r0 = Math.floor(row), fr = row - r0, k0 = Math.floor(col), fc = col - k0;
      for (let x = 0; x < W; x++) {
        const upper = at(r0, x + k0) + fc * (at(r0, x + k0 + 1) - at(r0, x + k0));
        const lower = at(r0 + 1, x + k0) + fc * (at(r0 + 1, x + k0 + 1) - at(r0 + 1, x + k0));
        out[y * W + x] = upper + fr * (lower - upper);
      }
    }
    return out;
  }

  // the model: features (D) in [0, 1] -> logits, probabilities
  function classify(pixels) {
    const x = M.deskew ? deskew(pixels) : Float64Array.from(pixels);
    const logits = new Float64Array(K);
    for (let c = 0; c < K; c++) {
      let s = bias[c];
      const off = c * D;
      for (let i = 0; i < D; i++) s += coef[off + i] * x[i];
      logits[c] = s;
    }
    const top = Math.max(...logits), T = M.temperature || 1;  // calibrated: softmax(logits / T), as predict_proba
    const e = logits.map(z => Math.exp((z - top) / T));
    const sum = e.reduce((a, b) => a + b, 0);
    return { features: x, logits, probabilities: e.map(v => v / sum) };
  }

  // ---------------------------------------------------------------- drawing
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const penWidth = () => pad.width / 12; // about an MNIST pen stroke, relative to the box the digit fills
  let drawing = false, last = null, pending = false, strokes = 0;

  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    strokes = 0;
    update();
  }
  function point(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }
  function segment(a, b) {
    ctx.strokeStyle = "#000"; ctx.lineWidth = penWidth(); ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  }
  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; update(); }); }
  }
  pad.addEventListener("pointerdown", e => {
    e.preventDefault(); pad.setPointerCapture(e.pointerId);
    drawing = true; last = point(e); segment(last, last); strokes++; schedule();
  });
  pad.addEventListener("pointermove", e => {
    if (!drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of (events.length ? events : [e])) { const p = point(ev); segment(last, p); last = p; }
    schedule();
  });
  for (const type of ["pointerup", "pointercancel", "pointerleave"]) pad.addEventListener(type, () => { drawing = false; });

  // ---------------------------------------------------------------- showing
  const names = M.class_names;
  let chosen = null; // class picked by the user for the evidence map, or null for the winner
  const bars = document.getElementById("bars");
  names.forEach((name, c) => {
    const row = document.createElement("button");
    row.className = "bar"; row.type = "button"; row.dataset.cls = c;
    row.setAttribute("aria-label", `show the evidence for ${name}`);
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>`;
    row.querySelector(".name").textContent = name;
    row.addEventListener("click", () => { chosen = chosen === c ? null : c; update(); });
    bars.appendChild(row);
  });

  function rdbu(v) { // v in [-1, 1] -> RdBu (red negative, white zero, blue positive)
    const stops = [[103, 0, 31], [178, 24, 43], [214, 96, 77], [244, 165, 130], [253, 219, 199], [247, 247, 247],
                   [209, 229, 240], [146, 197, 222], [67, 147, 195], [33, 102, 172], [5, 48, 97]];
    const t = (Math.max(-1, Math.min(1, v)) + 1) / 2 * (stops.length - 1), i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
    return stops[i].map((s, j) => Math.round(s + f * (stops[i + 1][j] - s)));
  }
  function paint(canvas, values, signed, limit) {
    const g = canvas.getContext("2d"), img = g.createImageData(W, H);
    for (let i = 0; i < D; i++) {
      const rgb = signed ? rdbu(values[i] / limit) : [255 * (1 - values[i]), 255 * (1 - values[i]), 255 * (1 - values[i])];
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    g.putImageData(img, 0, 0);
  }
  function limitOf(...maps) {
    let m = 0;
    for (const a of maps) for (const v of a) m = Math.max(m, Math.abs(v));
    return m || 1;
  }

  const state = { input: null, features: null, probabilities: null, prediction: null, sums: null, ms: 0 };
  function readPad() { // the pad as grey ink (bright = ink), as read_image does for a PNG of it
    const data = ctx.getImageData(0, 0, pad.width, pad.height).data;
    const grey = new Float64Array(pad.width * pad.height);
    for (let i = 0; i < grey.length; i++) {
      const r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2];
      grey[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255; // Pillow's convert("L")
    }
    return median(grey) > 0.5 ? grey.map(v => 1 - v) : grey;
  }

  function update() {
    const t0 = performance.now();
    const input = strokes ? toInput() : null;
    document.body.classList.toggle("empty", !input);
    state.input = input;
    if (!input) {
      Object.assign(state, { features: null, probabilities: null, prediction: null });
      document.getElementById("verdict").textContent = strokes ? "Nothing found: draw bigger or bolder" : "Nothing drawn yet";
      for (const id of ["evidence-sum", "contrast-sum"]) document.getElementById(id).textContent = "";
      state.sums = null;
      bars.querySelectorAll(".fill").forEach(f => (f.style.width = "0"));
      bars.querySelectorAll(".pct").forEach(p => (p.textContent = ""));
      for (const id of ["seen", "evidence", "contrast"]) paint(document.getElementById(id), new Float64Array(D), false);
      return;
    }
    const { features, logits, probabilities } = classify(input);
    const order = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a] || a - b);
    const a = chosen ?? order[0], b = a === order[0] ? order[1] : order[0];
    Object.assign(state, { features, probabilities: Array.from(probabilities), prediction: order[0] });
    document.getElementById("verdict").textContent = `It's ${names[order[0]]} (${percent(probabilities[order[0]])})`;
    bars.querySelectorAll(".bar").forEach((row, c) => {
      row.querySelector(".fill").style.width = `${100 * probabilities[c]}%`;
      row.querySelector(".pct").textContent = `${(100 * probabilities[c]).toFixed(1)}%`;
      row.classList.toggle("win", c === order[0]);
      row.classList.toggle("picked", c === a);
    });
    const ev = new Float64Array(D), con = new Float64Array(D);
    for (let i = 0; i < D; i++) { ev[i] = features[i] * coef[a * D + i]; con[i] = features[i] * (coef[a * D + i] - coef[b * D + i]); }
    const lim = limitOf(ev, con);
    let evSum = 0, conSum = 0;
    for (let i = 0; i < D; i++) { evSum += ev[i]; conSum += con[i]; }
    // The maps are exact: the evidence sums to the score minus the bias, the contrast to the score gap minus biases.
    state.sums = { evidence: evSum, contrast: conSum, score: evSum + bias[a], gap: conSum + bias[a] - bias[b],
                   logits: Array.from(logits), a, b, limit: lim };
    document.getElementById("evidence-sum").textContent = `sum ${signed(evSum)}, score ${signed(evSum + bias[a])}`;
    document.getElementById("contrast-sum").textContent =
      `sum ${signed(conSum)}, score gap ${signed(conSum + bias[a] - bias[b])}`;
    showLimit("legend", lim);
    paint(document.getElementById("seen"), features, false);
    paint(document.getElementById("evidence"), ev, true, lim);
    paint(document.getElementById("contrast"), con, true, lim);
    document.getElementById("evidence-title").textContent = `evidence for ${names[a]}`;
    document.getElementById("contrast-title").textContent = `why ${names[a]} and not ${names[b]}`;
    state.ms = performance.now() - t0;
  }

  // one decimal, more where one would round a probability below 1 to 100% (99.97%, not 100.0%), as plots.percent
  function percent(p) {
    for (let digits = 1; digits < 7; digits++) {
      const text = (100 * p).toFixed(digits);
      if (!(p > 0 && p < 1) || (Number(text) !== 100 && Number(text) !== 0)) return `${text}%`;
    }
    return p > 0.5 ? "> 99.9999%" : "< 0.0001%";
  }

  // the colour scales: a gradient from -limit (red) to +limit (blue), with its end values
  const signed = v => (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(2);
  function showLimit(id, limit) {
    document.getElementById(`${id}-min`).textContent = signed(-limit);
    document.getElementById(`${id}-max`).textContent = signed(limit);
  }
  for (const id of ["legend", "wlegend"]) {
    const cv = document.getElementById(id), g = cv.getContext("2d"), img = g.createImageData(cv.width, 1);
    for (let i = 0; i < cv.width; i++) img.data.set([...rdbu(2 * i / (cv.width - 1) - 1), 255], 4 * i);
    g.putImageData(img, 0, 0);
  }

  // the ten weight maps, for reference
  const weights = document.getElementById("weights"), wlim = M.weight_limit;
  showLimit("wlegend", wlim);
  names.forEach((name, c) => {
    const fig = document.createElement("figure"), cv = document.createElement("canvas");
    cv.width = W; cv.height = H; cv.className = "map";
    paint(cv, coef.subarray(c * D, (c + 1) * D), true, wlim);
    const cap = document.createElement("figcaption"); cap.textContent = name;
    fig.append(cv, cap); weights.appendChild(fig);
  });
  for (const id of ["seen", "evidence", "contrast"]) { const c = document.getElementById(id); c.width = W; c.height = H; }
  document.getElementById("clear").addEventListener("click", clearPad);
  window.mnistSoftmax = { classify, toModelInput, toDigitsInput, toFashionInput, deskew, state, clear: clearPad, readPad, update };
  clearPad();
})();
