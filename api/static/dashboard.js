/* dmcflow monitoring dashboard.
 *
 * Hand-written on purpose: the page must work in a current browser on an office network with no
 * build step and nothing fetched from the internet (no CDN, no npm), and what it draws is small:
 * a funnel as a few SVG rectangles, a sortable table, a list. Text is always put in with
 * textContent (never innerHTML), so nothing from the data can become markup.
 *
 * Data: the page embeds its first state (#initial-data); an area page then listens to the API's
 * Server-Sent Events (same origin, the HttpOnly session cookie) and redraws on every change; the
 * overview of a round polls its JSON every few seconds.
 */
(() => {
  "use strict";

  const I18N = {
    th: {
      title: "ติดตามการรับรองข้อมูล DMC", round: "รอบ", show: "แสดง", logout: "ออกจากระบบ", as_of: "ข้อมูล ณ",
      connecting: "กำลังเชื่อมต่อ…", live: "อัปเดตสด", lost: "การเชื่อมต่อขาด กำลังลองใหม่…",
      expired: "หมดเวลาเข้าสู่ระบบ โปรดโหลดหน้าใหม่", polling: "อัปเดตทุก 5 วินาที",
      all_areas: "ทุกเขตพื้นที่", funnel: "จำนวนโรงเรียนตามขั้นตอน", total: "ทั้งหมด",
      open_idc: "คำขอแก้ไขเลขประจำตัวประชาชนค้าง", open_dropouts: "ออกกลางคันค้าง", open_dups: "นักเรียนซ้ำซ้อนค้าง",
      warnings: "ใกล้กำหนดส่ง แต่ยังมีเรื่องค้างขวางการยืนยัน",
      at_risk: "โรงเรียนที่เสี่ยงไม่ทันกำหนด", no_risk: "ไม่มีโรงเรียนที่เสี่ยงในขณะนี้", schools: "รายชื่อโรงเรียน",
      search: "ค้นหารหัสหรือชื่อโรงเรียน", search_area: "ค้นหาเขตพื้นที่", all_stages: "ทุกขั้นตอน",
      risk_only: "เฉพาะที่เสี่ยง", cases_only: "เฉพาะที่มีเรื่องค้าง", report: "รายงาน",
      col_code: "รหัส", col_name: "โรงเรียน", col_stage: "ขั้นตอน", col_gate: "ความคืบหน้า 3.2.2 / 3.2.2.1 / 3.2.2.2",
      col_idc: "แก้เลขค้าง", col_dropouts: "ออกกลางคันค้าง", col_dups: "ซ้ำซ้อนค้าง", col_left: "เวลาที่เหลือ",
      col_risk: "ความเสี่ยง", timeline: "ลำดับเหตุการณ์", close: "ปิด", evidence: "ดาวน์โหลดชุดหลักฐาน (ZIP)",
      no_history: "ไม่พบประวัติเวิร์กโฟลว์ แสดงเฉพาะบันทึกการดำเนินการ", areas: "เขตพื้นที่", col_area: "เขตพื้นที่",
      col_total: "โรงเรียน", col_certified: "รับรองแล้ว", col_late: "ไม่ทันกำหนด", col_at_risk: "เสี่ยง",
      col_cases: "เรื่องค้าง", col_progress: "ความคืบหน้า", shown: (n, t) => `แสดง ${n} จาก ${t} โรงเรียน`,
      closed: "ปิดระบบแล้ว", loading: "กำลังโหลด…", system: "ระบบ", load_failed: "โหลดไม่สำเร็จ",
      days: "วัน", hours: "ชม.", minutes: "นาที",
    },
    en: {
      title: "DMC round monitoring", round: "Round", show: "Show", logout: "Log out", as_of: "As of",
      connecting: "Connecting…", live: "Live", lost: "Connection lost, retrying…",
      expired: "Your session ended; reload the page", polling: "Updated every 5 seconds",
      all_areas: "All areas", funnel: "Schools by stage", total: "Total",
      open_idc: "Open ID corrections", open_dropouts: "Open dropouts", open_dups: "Open duplicates",
      warnings: "Cutoff near, open cases still block confirmation",
      at_risk: "Schools at risk of missing the cutoff", no_risk: "No school is at risk now", schools: "Schools",
      search: "Search code or name", search_area: "Search area", all_stages: "All stages",
      risk_only: "At risk only", cases_only: "With open cases only", report: "Report",
      col_code: "Code", col_name: "School", col_stage: "Stage", col_gate: "Progress 3.2.2 / 3.2.2.1 / 3.2.2.2",
      col_idc: "ID corr.", col_dropouts: "Dropouts", col_dups: "Duplicates", col_left: "Time left",
      col_risk: "Risk", timeline: "Timeline", close: "Close", evidence: "Download the evidence pack (ZIP)",
      no_history: "No workflow history found: the audit trail alone is shown", areas: "Areas", col_area: "Area",
      col_total: "Schools", col_certified: "Certified", col_late: "Late", col_at_risk: "At risk",
      col_cases: "Open cases", col_progress: "Progress", shown: (n, t) => `${n} of ${t} schools shown`,
      closed: "Closed", loading: "Loading…", system: "system", load_failed: "Could not load",
      days: "d", hours: "h", minutes: "min",
    },
  };
  const BUCKETS = ["not_open", "open", "step_3_2_2", "step_3_2_2_1", "step_3_2_2_2", "confirmed", "certified", "late"];

  const app = document.getElementById("app");
  if (!app) return;
  const mode = app.dataset.mode;
  const roundId = app.dataset.round;
  const area = app.dataset.area;
  const state = {
    lang: app.dataset.lang === "en" ? "en" : "th",
    data: JSON.parse(document.getElementById("initial-data").textContent),
    receivedAt: performance.now(),
    sort: { key: mode === "area" ? "risk" : "area", dir: 1 },
    previous: new Map(),
  };

  const $ = (sel) => document.querySelector(sel);
  const t = (key) => I18N[state.lang][key] ?? key;
  // The round's deadlines are Bangkok's: show Bangkok time whatever zone the browser is set to,
  // as the server writes it in English (domain/thai_time.py english_datetime): "29 Nov 2026 16:30 (Bangkok)".
  const BANGKOK = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Bangkok", day: "2-digit", month: "numeric",
    year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const bangkokTime = (iso) => {
    const p = Object.fromEntries(BANGKOK.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
    return `${p.day} ${MONTHS[Number(p.month) - 1]} ${p.year} ${p.hour}:${p.minute} (Bangkok)`;
  };
  const when = (instant) => (state.lang === "en" ? bangkokTime(instant.iso) : instant.th);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };
  const svg = (tag, attrs = {}) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  const label = (step) => (state.lang === "en" ? step.label_en : step.label_th);

  function duration(seconds) {
    if (seconds <= 0) return t("closed");
    const m = Math.floor(seconds / 60), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), min = m % 60;
    const parts = [];
    if (d) parts.push(`${d} ${t("days")}`);
    if (h) parts.push(`${h} ${t("hours")}`);
    if (!d && (min || !parts.length)) parts.push(`${min} ${t("minutes")}`);
    return parts.join(" ");
  }
  const elapsed = () => (performance.now() - state.receivedAt) / 1000;

  // --- static labels and language ----------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const text = t(node.dataset.i18n);
      if (typeof text === "string") node.textContent = text;
    }
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    }
    const toggle = $("#lang-toggle");
    if (toggle) toggle.textContent = state.lang === "en" ? "ไทย" : "English";
    for (const id of ["report-csv", "report-xlsx"]) {
      const a = document.getElementById(id);
      if (a) { const u = new URL(a.href); u.searchParams.set("lang", state.lang); a.href = u.toString(); }
    }
  }
  $("#lang-toggle")?.addEventListener("click", () => {
    state.lang = state.lang === "en" ? "th" : "en";
    document.cookie = `dmcflow_lang=${state.lang}; Path=/; Max-Age=31536000; SameSite=Strict`;
    applyLanguage();
    render();
  });

  // --- the funnel: counts and an SVG bar chart ------------------------------------------------------
  function renderFunnel(funnel) {
    const list = $("#funnel-list");
    list.replaceChildren(...funnel.map((step) => el("li", { class: step.bucket, "data-bucket": step.bucket },
      el("span", { class: "label", text: label(step) }), el("span", { class: "count", text: String(step.count) }))));
    const chart = $("#funnel-chart");
    const max = Math.max(1, ...funnel.map((s) => s.count));
    const rowH = 24, width = 520, left = 170;
    chart.setAttribute("viewBox", `0 0 ${width} ${funnel.length * rowH + 4}`);
    chart.replaceChildren();
    funnel.forEach((step, i) => {
      const y = i * rowH + 2, w = Math.round(((width - left - 50) * step.count) / max);
      const name = svg("text", { x: left - 6, y: y + 15, "text-anchor": "end" });
      name.textContent = label(step);
      const bar = svg("rect", { x: left, y, width: Math.max(w, step.count ? 2 : 0), height: rowH - 6,
        class: `bar ${step.bucket}`, "data-bucket": step.bucket });
      const count = svg("text", { x: left + w + 6, y: y + 15 });
      count.textContent = String(step.count);
      chart.append(name, bar, count);
    });
  }

  function renderTotals(d) {
    $("#total").textContent = String(d.total);
    $("#open-idc").textContent = String(d.open_cases.id_corrections);
    $("#open-dropouts").textContent = String(d.open_cases.dropouts);
    $("#open-dups").textContent = String(d.open_cases.duplicates);
    $("#as-of").textContent = when(d.now);
  }

  // --- an area: at risk, the school list -------------------------------------------------------------
  function riskText(r) { return state.lang === "en" ? r.en : r.th; }

  function renderRisk(d) {
    $("#risk-count").textContent = String(d.at_risk.length);
    $("#risk-none").hidden = d.at_risk.length > 0;
    $("#risk-list").replaceChildren(...d.at_risk.map((s) => el("li", { "data-school": s.school_code, "data-code": s.risk.code },
      el("b", { text: `${s.school_name} (${s.school_code})` }), document.createTextNode(": "),
      el("span", { class: "reason", text: riskText(s.risk) }))));
  }

  // issue 16: open cases still blocking a school hours before its cutoff (domain.monitoring.BLOCKING_WARNING)
  function renderWarnings(d) {
    const warned = d.warnings || [];
    $("#warnings").hidden = warned.length === 0;
    $("#warn-count").textContent = String(warned.length);
    $("#warn-list").replaceChildren(...warned.map((s) => el("li", { "data-school": s.school_code, "data-code": s.risk.code },
      el("b", { text: `${s.school_name} (${s.school_code})` }), document.createTextNode(": "),
      el("span", { class: "reason", text: riskText(s.risk) }))));
  }

  const progress = (g) => (g.students ? (g.results + g.repeat_reasons + g.destinations) / (g.students + g.repeaters + g.graduates) : 0);
  const caseCount = (s) => s.open_id_corrections + s.open_dropouts + s.open_duplicates;
  const SORTS = {
    code: (s) => s.school_code, name: (s) => s.school_name, bucket: (s) => BUCKETS.indexOf(s.bucket),
    progress: (s) => progress(s.gate), idc: (s) => s.open_id_corrections, dropouts: (s) => s.open_dropouts,
    dups: (s) => s.open_duplicates, left: (s) => s.seconds_left, risk: (s) => (s.risk ? 0 : 1) * 1e9 + s.seconds_left,
  };

  function fillBucketFilter() {
    const select = $("#filter-bucket");
    if (!select) return;
    const chosen = select.value;
    const first = select.options[0];
    first.textContent = t("all_stages");
    select.replaceChildren(first, ...state.data.funnel.map((s) => el("option", { value: s.bucket, text: label(s) })));
    select.value = chosen;
  }

  function visibleSchools() {
    const text = ($("#filter-text")?.value || "").trim().toLowerCase();
    const bucket = $("#filter-bucket")?.value || "";
    const riskOnly = $("#filter-risk")?.checked, casesOnly = $("#filter-cases")?.checked;
    const rows = state.data.schools.filter((s) =>
      (!text || s.school_code.includes(text) || s.school_name.toLowerCase().includes(text))
      && (!bucket || s.bucket === bucket) && (!riskOnly || s.risk) && (!casesOnly || caseCount(s) > 0));
    const key = SORTS[state.sort.key] || SORTS.code;
    return rows.sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : a.school_code.localeCompare(b.school_code)) * state.sort.dir;
    });
  }

  function stepsCell(g) {
    const step = (name, done, count, of) => el("span", { class: done ? "done" : "todo", text: `${done ? "✓" : "·"} ${count}/${of}` });
    const cell = el("td", { class: "steps" });
    cell.append(step("3.2.2", g.steps["3.2.2"] && g.students > 0, g.results, g.students), " ",
      step("3.2.2.1", g.steps["3.2.2.1"] && g.students > 0, g.repeat_reasons, g.repeaters), " ",
      step("3.2.2.2", g.steps["3.2.2.2"] && g.students > 0, g.destinations, g.graduates));
    const bar = el("span", { class: "progress-bar" }, el("span"));
    bar.firstChild.style.width = `${Math.round(progress(g) * 100)}%`;
    cell.append(" ", bar);
    return cell;
  }
  const num = (n) => el("td", { class: n ? "" : "zero", text: String(n) });

  function renderTable() {
    const stepOf = Object.fromEntries(state.data.funnel.map((s) => [s.bucket, s]));
    const rows = visibleSchools().map((s) => {
      const name = el("button", { type: "button", "data-open-timeline": s.school_code, text: s.school_name });
      const stage = el("td", { class: `stage-${s.bucket}`, text: label(stepOf[s.bucket]) });
      const left = el("td", { class: "left", "data-seconds": String(s.seconds_left), text: duration(s.seconds_left) });
      const risk = el("td", { class: "risk-cell", text: s.risk ? riskText(s.risk) : "" });
      const tr = el("tr", { "data-school": s.school_code, "data-bucket": s.bucket, class: s.risk ? "risk" : "" },
        el("td", { text: s.school_code }), el("td", { class: "school" }, name), stage, stepsCell(s.gate),
        num(s.open_id_corrections), num(s.open_dropouts), num(s.open_duplicates), left, risk);
      const before = state.previous.get(s.school_code);
      if (before && before !== s.bucket) tr.classList.add("flash");
      return tr;
    });
    $("#school-table tbody").replaceChildren(...rows);
    $("#shown").textContent = t("shown")(rows.length, state.data.schools.length);
    for (const th of document.querySelectorAll("#school-table th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    }
  }

  function tick() {  // time left counts down between updates
    for (const td of document.querySelectorAll("td.left[data-seconds]")) {
      td.textContent = duration(Number(td.dataset.seconds) - elapsed());
    }
  }

  // --- a round: every area -------------------------------------------------------------------------
  const AREA_SORTS = {
    area: (a) => a.area, total: (a) => a.total, certified: (a) => a.funnel.certified || 0, late: (a) => a.funnel.late || 0,
    risk: (a) => a.at_risk, cases: (a) => a.open_cases.id_corrections + a.open_cases.dropouts + a.open_cases.duplicates,
  };

  function renderAreas() {
    const text = ($("#filter-text")?.value || "").trim().toLowerCase();
    const key = AREA_SORTS[state.sort.key] || AREA_SORTS.area;
    const areas = state.data.areas.filter((a) => !text || a.area.toLowerCase().includes(text))
      .sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir; });
    $("#area-table tbody").replaceChildren(...areas.map((a) => {
      const link = el("a", { href: `/dashboard?round=${encodeURIComponent(roundId)}&area=${encodeURIComponent(a.area)}`, text: a.area });
      const done = a.total ? (a.funnel.certified || 0) / a.total : 0;
      const bar = el("span", { class: "progress-bar" }, el("span"));
      bar.firstChild.style.width = `${Math.round(done * 100)}%`;
      return el("tr", { "data-area": a.area }, el("td", {}, link), num(a.total), num(a.funnel.certified || 0),
        num(a.funnel.late || 0), num(a.at_risk),
        num(a.open_cases.id_corrections + a.open_cases.dropouts + a.open_cases.duplicates), el("td", {}, bar));
    }));
    for (const th of document.querySelectorAll("#area-table th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    }
  }

  function render() {
    const d = state.data;
    renderFunnel(d.funnel);
    renderTotals(d);
    if (mode === "area") {
      renderRisk(d);
      renderWarnings(d);
      fillBucketFilter();
      renderTable();
      state.previous = new Map(d.schools.map((s) => [s.school_code, s.bucket]));
    } else {
      renderAreas();
    }
    app.dataset.updated = String(Date.now());
  }

  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      state.sort = { key: th.dataset.sort, dir: state.sort.key === th.dataset.sort ? -state.sort.dir : 1 };
      mode === "area" ? renderTable() : renderAreas();
    });
  }
  for (const id of ["filter-text", "filter-bucket", "filter-risk", "filter-cases"]) {
    document.getElementById(id)?.addEventListener("input", () => (mode === "area" ? renderTable() : renderAreas()));
  }
  $("#round-select")?.addEventListener("change", (e) => e.target.form.submit());

  function setStatus(key) {
    const node = $("#live-status");
    node.dataset.state = key;
    node.dataset.i18n = key;
    node.textContent = t(key);
  }

  // --- live updates ------------------------------------------------------------------------------
  function connect() {
    const url = `/rounds/${encodeURIComponent(roundId)}/areas/${encodeURIComponent(area)}/events`;
    const source = new EventSource(url);
    source.addEventListener("open", () => setStatus("live"));
    source.addEventListener("dashboard", (event) => {
      state.data = JSON.parse(event.data);
      state.receivedAt = performance.now();
      setStatus("live");
      render();
    });
    source.addEventListener("error", () => setStatus(source.readyState === EventSource.CLOSED ? "expired" : "lost"));
  }

  async function poll() {
    try {
      const r = await fetch(`/rounds/${encodeURIComponent(roundId)}/overview`, { credentials: "same-origin" });
      if (r.status === 401) { setStatus("expired"); return; }
      if (r.ok) { state.data = await r.json(); state.receivedAt = performance.now(); setStatus("polling"); render(); }
      else setStatus("lost");
    } catch (e) { setStatus("lost"); }
    setTimeout(poll, 5000);
  }

  // --- a school's timeline -----------------------------------------------------------------------
  async function openTimeline(code) {
    const panel = $("#timeline");
    const school = state.data.schools.find((s) => s.school_code === code);
    panel.hidden = false;
    panel.dataset.school = code;
    $("#timeline-school").textContent = school ? `${school.school_name} (${code})` : code;
    $("#evidence-link").href = `/rounds/${encodeURIComponent(roundId)}/schools/${encodeURIComponent(code)}/evidence-pack`;
    const list = $("#timeline-list");
    list.replaceChildren(el("li", { text: t("loading") }));
    try {
      const r = await fetch(`/rounds/${encodeURIComponent(roundId)}/schools/${encodeURIComponent(code)}/timeline`,
        { credentials: "same-origin" });
      const body = await r.json();
      if (!r.ok) { list.replaceChildren(el("li", { text: state.lang === "en" ? body.message_en : body.message_th })); return; }
      $("#timeline-note").hidden = body.history_available;
      list.replaceChildren(...body.lines.map((line) => el("li", { class: line.source, "data-code": line.code },
        el("span", { class: "when", text: when(line.at) }),
        document.createTextNode(" "), el("span", { class: "what", text: state.lang === "en" ? line.en : line.th }),
        line.actor && line.actor !== "system" ? el("small", { text: ` · ${line.actor_name || line.actor}` }) : "")));
      panel.dataset.loaded = code;
    } catch (e) {
      list.replaceChildren(el("li", { text: t("load_failed") }));
    }
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-open-timeline]");
    if (button) openTimeline(button.dataset.openTimeline);
  });
  $("#timeline-close")?.addEventListener("click", () => { $("#timeline").hidden = true; });

  applyLanguage();
  render();
  if (mode === "area") {
    setInterval(tick, 1000);
    connect();
  } else {
    setTimeout(poll, 5000);
    setStatus("polling");
  }
})();
