// The Clearhouse dashboard: REST reads for what changes slowly, the WebSocket streams for the
// book, trades and the selected account. Every field is read defensively (a missing or renamed
// field shows "–"), since the page may be newer or older than the node that serves it.
"use strict";

const QUOTE_PER_UNIT = 1e6; // USDC has 6 decimals: prices and balances are in its quantums
const BOOK_LEVELS_MAX = 20;
const TRADES_SHOWN = 40;
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const requested = new URLSearchParams(location.hash.slice(1)); // read before the page rewrites it

const state = {
  info: null, markets: [], market: null, account: null,
  book: { bids: new Map(), asks: new Map() }, trades: [], candles: [],
  liveTrades: 0, height: 0, seq: {}, ws: null, wsOpen: false, retryMs: 500,
};

// ── Numbers ──────────────────────────────────────────────────────────────────────────────

function num(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "") return Number(value);
  return NaN;
}
function fmt(value, digits = 2) {
  const n = num(value);
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const usd = (quantums) => num(quantums) / QUOTE_PER_UNIT;
const price = (quantums, digits) => (num(quantums) > 0 ? fmt(usd(quantums), digits) : "–"); // 0: none yet
function params(marketId) {
  const found = state.markets.find((m) => m.market_id === marketId);
  return (found && found.params) || {};
}
function baseUnits(marketId) { return num(params(marketId).base_quantums_per_unit) || 1; }
function decimalsOf(step) { return step > 0 && step < 1 ? Math.min(8, Math.ceil(-Math.log10(step) - 1e-9)) : 0; }
function priceDigits(marketId) { return decimalsOf(usd(params(marketId).tick_quantums)); }
function sizeDigits(marketId) { return decimalsOf(num(params(marketId).step_base_quantums) / baseUnits(marketId)); }
function timeMs(item) {
  if (item.timestamp_ms !== undefined) return num(item.timestamp_ms);
  return Math.floor(num(item.timestamp_ns) / 1e6);
}
function clock(ms) {
  return Number.isFinite(ms) ? new Date(ms).toLocaleTimeString("en-GB", { hour12: false }) : "–";
}
const short = (text) => (typeof text === "string" && text.length > 14 ? `${text.slice(0, 8)}…${text.slice(-4)}` : String(text ?? "–"));

// ── DOM helpers ──────────────────────────────────────────────────────────────────────────

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function row(cells, className) {
  const tr = el("tr", className);
  for (const cell of cells) {
    if (cell instanceof HTMLTableCellElement) tr.append(cell);
    else tr.append(cell instanceof Node ? wrap(cell) : el("td", "", cell));
  }
  return tr;
}
function wrap(node) { const td = el("td"); td.append(node); return td; }
function accountLink(subaccount) {
  const link = el("a", "acct", short(subaccount));
  link.href = "#";
  link.title = subaccount;
  link.addEventListener("click", (event) => { event.preventDefault(); openAccount(String(subaccount).split("/")[0]); });
  return link;
}

// ── REST ─────────────────────────────────────────────────────────────────────────────────

async function get(path) {
  const answer = await fetch(path, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${path}: ${answer.status}`);
  return answer.json();
}
async function quietly(work) {
  try { await work(); } catch (error) { console.debug(error); }
}

// ── The WebSocket ────────────────────────────────────────────────────────────────────────

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`);
  state.ws = ws;
  ws.onopen = () => { state.wsOpen = true; state.retryMs = 500; setLive(true); channels().forEach(subscribe); };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = () => {
    state.wsOpen = false; state.seq = {}; setLive(false);
    setTimeout(connect, state.retryMs); // the node restarting: back off, then resubscribe
    state.retryMs = Math.min(state.retryMs * 2, 10000);
  };
}
function setLive(live) { const dot = $("live"); dot.textContent = live ? "live" : "offline"; dot.classList.toggle("on", live); }
function channels() {
  const found = [];
  if (state.market) found.push(`book:${state.market}`, `trades:${state.market}`);
  if (state.account) found.push(`account:${state.account}`);
  return found;
}
function send(op, channel) { if (state.wsOpen) state.ws.send(JSON.stringify({ op, channel })); }
function subscribe(channel) { delete state.seq[channel]; send("subscribe", channel); }
function unsubscribe(channel) { delete state.seq[channel]; send("unsubscribe", channel); }

function onMessage(message) {
  const channel = message.channel;
  if (message.type === "error" || !channel || !channels().includes(channel)) return;
  const last = state.seq[channel];
  if (message.type !== "snapshot" && (last === undefined || message.seq !== last + 1)) {
    unsubscribe(channel); subscribe(channel); // a gap: the stream's resync is a new snapshot
    return;
  }
  state.seq[channel] = message.seq;
  if (num(message.height) > state.height) setHeight(message.height);
  const kind = channel.split(":")[0];
  if (kind === "book") onBook(message);
  else if (kind === "trades") onTrades(message);
  else if (kind === "account") scheduleAccount();
}

// ── Markets ──────────────────────────────────────────────────────────────────────────────

async function loadMarkets() {
  state.markets = await get("/v1/markets");
  renderMarketTabs();
  if (!state.market && state.markets.length) selectMarket(preferredMarket());
  renderStats();
}
function preferredMarket() {
  const asked = requested.get("market");
  const ids = state.markets.map((m) => m.market_id);
  if (ids.includes(asked)) return asked;
  return ids.find((id) => id.endsWith("-PERP")) || ids[0];
}
function renderMarketTabs() {
  const nav = $("markets");
  const ids = state.markets.map((m) => m.market_id).join();
  if (nav.dataset.ids === ids) { markSelected(); return; }
  nav.dataset.ids = ids;
  nav.replaceChildren(...state.markets.map((m) => {
    const tab = el("button", "tab", m.market_id);
    tab.title = `${m.kind || ""} · ${m.status || ""}`;
    tab.addEventListener("click", () => selectMarket(m.market_id));
    return tab;
  }));
  if (!state.markets.length) nav.append(el("span", "muted", "no markets listed yet"));
  markSelected();
}
function markSelected() {
  for (const tab of $("markets").children) tab.classList.toggle("on", tab.textContent === state.market);
}
function selectMarket(marketId) {
  if (marketId === state.market) return;
  if (state.market) { unsubscribe(`book:${state.market}`); unsubscribe(`trades:${state.market}`); }
  state.market = marketId;
  state.book = { bids: new Map(), asks: new Map() }; state.trades = []; state.candles = [];
  saveHash(); markSelected(); renderBook(); renderTrades(); renderStats();
  subscribe(`book:${marketId}`); subscribe(`trades:${marketId}`);
  quietly(loadCandles); quietly(loadAdl);
}
function saveHash() {
  const parts = new URLSearchParams();
  if (state.market) parts.set("market", state.market);
  if (state.account) parts.set("account", state.account);
  history.replaceState(null, "", `#${parts}`);
}

function stat(label, value, title) {
  const box = el("div", "stat");
  box.append(el("span", "label", label), el("span", "value", value));
  if (title) box.title = title;
  return box;
}
function renderStats() {
  const m = state.markets.find((x) => x.market_id === state.market);
  if (!m) { $("stats").replaceChildren(stat("Venue", state.markets.length ? "–" : "no markets yet")); return; }
  const d = priceDigits(m.market_id), units = baseUnits(m.market_id);
  const oi = num(m.open_interest_base_quantums) / units;
  const nextFunding = Math.floor(num(m.next_funding_ns) / 1e6) - Date.now();
  const boxes = [
    stat(m.market_id, `${m.kind || ""} · ${m.status || ""}`),
    stat("Index", price(m.index_price_quantums, d), `oracle ${m.oracle_status || "–"}`),
    stat("Mark", price(m.mark_price_quantums, d)),
    stat("Last", price(m.last_trade_price_quantums, d)),
    stat("Open interest", `${fmt(oi, sizeDigits(m.market_id))}`, `≈ ${fmt(oi * usd(m.mark_price_quantums), 0)} USDC`),
  ];
  if (m.kind === "perpetual") {
    boxes.push(stat("Funding (cumulative)", `${fmt(num(m.cumulative_funding_ppb) / 1e7, 4)} %`,
                    "cumulative funding index, per unit of notional"));
    boxes.push(stat("Next funding", nextFunding > 0 ? countdown(nextFunding) : "now"));
  } else if (num(m.expiry_ns) > 0) {
    boxes.push(stat("Expiry", new Date(num(m.expiry_ns) / 1e6).toISOString().slice(0, 16).replace("T", " ")));
  }
  $("stats").replaceChildren(...boxes);
}
function countdown(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, "0")}m ${String(s % 60).padStart(2, "0")}s`;
}

// ── Book ─────────────────────────────────────────────────────────────────────────────────

function onBook(message) {
  if (message.type === "snapshot") {
    state.book = { bids: new Map(), asks: new Map() };
  }
  for (const side of ["bids", "asks"]) {
    for (const level of message[side] || []) {
      const [price, size] = level.map(num);
      if (size > 0) state.book[side].set(price, size); else state.book[side].delete(price);
    }
  }
  renderBook();
}
function levels(side) {
  const sorted = [...state.book[side].entries()].sort((a, b) => (side === "bids" ? b[0] - a[0] : a[0] - b[0]));
  return sorted.slice(0, levelsThatFit());
}
function levelsThatFit() {
  // As many levels a side as the panel shows without scrolling, so that the spread stays in view.
  const panel = $("book-panel"), table = $("book");
  const sample = table.querySelector("tr.level");
  const rowHeight = sample ? sample.getBoundingClientRect().height : 18;
  const above = table.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
  const room = panel.clientHeight - above - 2 * rowHeight - 8; // less the header and spread rows
  return Math.max(3, Math.min(BOOK_LEVELS_MAX, Math.floor(room / rowHeight / 2)));
}
function renderBook() {
  const market = state.market, units = baseUnits(market), d = priceDigits(market), sd = sizeDigits(market);
  const bids = levels("bids"), asks = levels("asks");
  const all = [...bids, ...asks].map((l) => l[1]);
  const most = Math.max(...all, 1);
  const rows = (list, cls) => {
    let total = 0;
    return list.map(([price, size]) => {
      total += size;
      const tr = row([fmt(usd(price), d), fmt(size / units, sd), fmt(total / units, sd)], `level ${cls}`);
      tr.style.setProperty("--depth", `${Math.round((size / most) * 100)}%`);
      return tr;
    });
  };
  $("asks").replaceChildren(...rows(asks, "ask").reverse());
  $("bids").replaceChildren(...rows(bids, "bid"));
  const spread = bids.length && asks.length ? usd(asks[0][0] - bids[0][0]) : NaN;
  const mid = el("td", "", Number.isFinite(spread) ? `spread ${fmt(spread, d)}` : (all.length ? "one-sided book" : "empty book"));
  mid.colSpan = 3;
  $("mid").replaceChildren(row([mid], "mid"));
  $("spread").textContent = bids.length || asks.length ? `${bids.length}×${asks.length} levels` : "";
  const toUnits = (list) => list.map(([p, q]) => [usd(p), q / units]);
  Charts.depth($("depth"), toUnits(bids), toUnits(asks), d);
  document.body.dataset.bookLevels = String(bids.length + asks.length);
}

// ── Trades and candles ───────────────────────────────────────────────────────────────────

function onTrades(message) {
  const incoming = message.trades || [];
  if (message.type === "snapshot") state.trades = incoming.slice().reverse(); // newest first
  else {
    state.trades = incoming.slice().reverse().concat(state.trades).slice(0, TRADES_SHOWN * 2);
    state.liveTrades += incoming.length;
    document.body.dataset.liveTrades = String(state.liveTrades);
    for (const trade of incoming) foldIntoCandles(trade);
  }
  renderTrades(message.type === "snapshot" ? 0 : incoming.length);
}
function renderTrades(fresh = 0) {
  const market = state.market, units = baseUnits(market), d = priceDigits(market), sd = sizeDigits(market);
  const body = $("trades");
  body.replaceChildren(...state.trades.slice(0, TRADES_SHOWN).map((t, i) => {
    const side = t.taker_side === "buy" ? "bid" : "ask";
    return row([fmt(usd(t.price_quantums), d), fmt(num(t.size_base_quantums) / units, sd), clock(timeMs(t))],
               `${side}${i < fresh ? " new" : ""}`);
  }));
  if (!state.trades.length) body.append(row(["no trades yet", "", ""], "muted"));
}
async function loadCandles() {
  if (!state.market) return;
  const market = state.market;
  const answer = await get(`/v1/markets/${encodeURIComponent(market)}/candles?limit=90`);
  if (market !== state.market) return;
  state.candles = answer.map((c) => ({
    t: c.minute_ms !== undefined ? num(c.minute_ms) : Math.floor(num(c.minute_ns) / 1e6),
    open: usd(c.open), high: usd(c.high), low: usd(c.low), close: usd(c.close),
    volume: num(c.volume_base_quantums) / baseUnits(market),
  })).reverse();
  renderCandles();
}
function foldIntoCandles(trade) {
  // Between two candle reads, a trade moves the last candle (or opens the next) at once.
  const minute = Math.floor(timeMs(trade) / 60000) * 60000, price = usd(trade.price_quantums);
  const size = num(trade.size_base_quantums) / baseUnits(state.market);
  const last = state.candles[state.candles.length - 1];
  if (last && last.t === minute) {
    last.high = Math.max(last.high, price); last.low = Math.min(last.low, price);
    last.close = price; last.volume += size;
  } else if (!last || minute > last.t) {
    state.candles.push({ t: minute, open: price, high: price, low: price, close: price, volume: size });
  }
  renderCandles();
}
function renderCandles() { Charts.candles($("candles"), state.candles, priceDigits(state.market)); }

// ── Account ──────────────────────────────────────────────────────────────────────────────

function openAccount(address) {
  const clean = String(address || "").trim().toLowerCase();
  if (!/^0x[0-9a-f]{40}$/.test(clean)) { $("account").replaceChildren(el("p", "warn", "an address is 0x and 40 hex digits")); return; }
  if (state.account) unsubscribe(`account:${state.account}`);
  state.account = clean;
  $("address").value = clean;
  saveHash();
  subscribe(`account:${clean}`);
  quietly(loadAccount);
}
let accountTimer = null;
function scheduleAccount() { // updates arrive per block: one read per burst is enough
  if (accountTimer === null) accountTimer = setTimeout(() => { accountTimer = null; quietly(loadAccount); }, 250);
}
async function loadAccount() {
  if (!state.account) return;
  const address = state.account;
  const answer = await get(`/v1/accounts/${address}`);
  if (address === state.account) renderAccount(answer);
}
function renderAccount(account) {
  const subs = account.subaccounts || [];
  const box = $("account");
  if (!subs.length) { box.replaceChildren(el("p", "muted", `${account.address}: no subaccounts (nothing deposited yet)`)); return; }
  box.replaceChildren(...subs.map(renderSubaccount));
}
function renderSubaccount(sub) {
  const margin = sub.margin || {};
  const equity = usd(margin.equity_quote_quantums), mm = usd(margin.maintenance_quote_quantums), im = usd(margin.initial_quote_quantums);
  const card = el("div", "subaccount");
  const title = el("div", "sub-title");
  title.append(el("b", "", sub.subaccount || "–"), el("span", "muted", ` ${sub.margin_mode || ""} margin · ${sub.open_orders ?? 0} open orders`));
  if (margin.liquidatable) title.append(el("span", "badge bad", "liquidatable"));
  if (sub.under_liquidation) title.append(el("span", "badge bad", "under liquidation"));
  card.append(title, health(equity, im, mm), marginLine(margin, sub.balances || {}));
  card.append(positionsTable(sub, equity, mm), greeksLine(sub.greeks || {}));
  return card;
}
function health(equity, im, mm) {
  // The bar is equity against the maintenance requirement: full at 3× MM or more, empty at MM.
  const ratio = mm > 0 ? equity / mm : Infinity;
  const fill = Math.max(0, Math.min(1, (ratio - 1) / 2));
  const bar = el("div", "health");
  const inner = el("div", ratio < 1.2 ? "bad" : ratio < 2 ? "warn" : "good");
  inner.style.width = `${Math.round(fill * 100)}%`;
  bar.append(inner);
  bar.title = mm > 0 ? `equity ${fmt(ratio, 2)}× maintenance (initial ${fmt(im, 2)} USDC)` : "no margin requirement";
  const line = el("div", "health-line");
  line.append(el("span", "label", "Margin health"), bar, el("span", "", mm > 0 ? `${fmt(ratio, 2)}× MM` : "no positions at risk"));
  return line;
}
function marginLine(margin, balances) {
  const line = el("div", "kv");
  const pairs = [
    ["Equity", usd(margin.equity_quote_quantums)], ["Initial", usd(margin.initial_quote_quantums)],
    ["Maintenance", usd(margin.maintenance_quote_quantums)], ["Free", usd(margin.free_collateral_quote_quantums)],
    ["Withdrawable", usd(margin.withdrawable_quote_quantums)],
  ];
  for (const [label, value] of pairs) line.append(stat(label, fmt(value, 2)));
  const held = Object.entries(balances).map(([asset, q]) => `${asset} ${fmt(asset === "USDC" ? usd(q) : num(q), 2)}`).join(", ");
  line.append(stat("Balances", held || "–"));
  return line;
}
function positionsTable(sub, equity, mm) {
  const table = el("table", "num positions");
  table.append(row(["Market", "Size", "Entry", "Mark", "Unrealized", "Funding due", "Liq. ≈", "ADL rank"].map((h) => el("th", "", h))));
  const positions = sub.positions || [];
  for (const p of positions) {
    const market = p.market || p.market_id, units = baseUnits(market), d = priceDigits(market);
    const size = num(p.size) / units, mark = usd(p.mark_price_quantums);
    const entry = size !== 0 ? usd(num(p.cost)) / size : NaN;
    const rank = p.adl_rank ? `${p.adl_rank.rank} of ${p.adl_rank.of}` : "–";
    const pnl = usd(p.unrealized_pnl_quote_quantums);
    table.append(row([market, fmt(size, sizeDigits(market)), fmt(entry, d), fmt(mark, d),
                      el("span", pnl >= 0 ? "up" : "down", fmt(pnl, 2)),
                      fmt(usd(p.funding_pending_quote_quantums), 2),
                      liquidationText(liquidationPrice(market, size, mark, equity, mm), d), rank]));
  }
  if (!positions.length) table.append(row(["no positions", "", "", "", "", "", "", ""], "muted"));
  return table;
}
function liquidationPrice(market, size, mark, equity, mm) {
  // Where this position's price move alone takes equity down to maintenance, the other
  // positions and the requirement held where they are: an estimate (the node's margin engine
  // is what decides), and only for linear markets (an option's price is not its underlying's).
  const found = state.markets.find((m) => m.market_id === market);
  if (!found || found.kind === "option" || !size || !Number.isFinite(equity - mm)) return NaN;
  return mark - (equity - mm) / size;
}
function liquidationText(price, digits) {
  if (!Number.isFinite(price)) return "–";
  return price > 0 ? fmt(price, digits) : "none"; // the equity covers a fall to zero
}
function greeksLine(greeks) {
  const line = el("div", "kv");
  for (const [underlying, g] of Object.entries(greeks)) {
    line.append(stat(`${underlying} Δ`, fmt(g.delta, 4)), stat("Γ", fmt(g.gamma, 6)),
                stat("Vega", fmt(g.vega, 2)), stat("Θ", fmt(g.theta, 2)),
                stat("ρ", fmt(g.rho ?? 0, 2)));
  }
  if (!line.children.length) line.append(el("span", "muted", "no Greeks (no positions)"));
  return line;
}

// ── Risk: liquidations, insurance, vault, ADL ────────────────────────────────────────────

async function loadRisk() {
  const [found, fund] = await Promise.all([get("/v1/liquidations?limit=30"), get("/v1/insurance")]);
  renderLiquidations(found);
  const book = fund.book && fund.book.positions ? fund.book.positions.length : 0;
  $("insurance").textContent = `${fmt(usd(fund.balance_quote_quantums), 2)} ${fund.asset || "USDC"}${book ? ` · ${book} positions taken over` : ""}`;
  await quietly(loadVault);
  await quietly(loadAdl);
}
function renderLiquidations(found) {
  const list = $("liquidations");
  const now = el("li", "muted", `liquidatable now: ${(found.liquidatable || []).length} · in progress: ${(found.in_progress || []).length}`);
  const items = (found.recent || []).filter((e) => e.type !== "LiquidationReceipt");
  const receipts = (found.recent || []).filter((e) => e.type === "LiquidationReceipt");
  list.replaceChildren(now, ...items.slice(0, 12).map((e) => liquidationItem(e, receipts)));
}
function liquidationItem(event, receipts) {
  const li = el("li");
  const units = baseUnits(event.market_id);
  const head = el("div");
  head.append(el("span", "muted", `${clock(timeMs(event))} `), el("b", "", event.type === "AuctionStarted" ? "auction started" : stageName(event.stage)),
              document.createTextNode(` ${event.market_id || ""} ${fmt(num(event.size_base_quantums) / units, sizeDigits(event.market_id))} `),
              accountLink(event.subaccount));
  li.append(head);
  const receipt = receipts.find((r) => r.height === event.height && r.subaccount === event.subaccount && r.market_id === event.market_id);
  if (receipt) li.append(receiptDetails(receipt));
  return li;
}
const STAGES = { 1: "book", 2: "auction", 3: "deleverage", 4: "fund", 5: "vault" }; // LiquidationStage
function stageName(stage) { return STAGES[stage] || String(stage ?? "step").toLowerCase(); }
function receiptDetails(r) {
  const details = el("details");
  details.append(el("summary", "", `receipt · notional ${fmt(usd(r.notional_quote_quantums), 2)} · fund paid ${fmt(usd(r.fund_paid_quote_quantums), 2)}`));
  const d = priceDigits(r.market_id);
  const pairs = [["mark", fmt(usd(r.mark_price_quantums), d)], ["index", fmt(usd(r.index_price_quantums), d)],
                 ["equity", fmt(usd(r.equity_quote_quantums), 2)], ["maintenance", fmt(usd(r.maintenance_quote_quantums), 2)],
                 ["bankruptcy", fmt(usd(r.bankruptcy_price_quantums), d)], ["bound", fmt(usd(r.bound_price_quantums), d)],
                 ["block", String(r.height ?? "–")]];
  const grid = el("div", "kv small");
  for (const [label, value] of pairs) grid.append(stat(label, value));
  details.append(grid);
  return details;
}
async function loadVault() {
  const vault = await get("/v1/vault");
  const box = $("vault");
  if (!num(vault.total_shares) && !vault.subaccount) { box.textContent = "Vault: no deposits yet"; return; }
  const quotes = Object.keys(vault.quotes || {}).length;
  box.replaceChildren(el("span", "", `Vault NAV ${fmt(usd(vault.nav_quote_quantums), 2)} USDC · ${vault.owners ?? 0} owners · ${quotes} markets quoted`));
  const options = await get("/v1/options-vault");
  if (!options.set_up || !num(options.total_shares)) return;
  const x = options.exposure || {};
  box.append(el("br"), el("span", "", `Options vault NAV ${fmt(usd(options.nav_quote_quantums), 2)} USDC · ${options.quoted_markets} options quoted · vega ${fmt(usd(x.vega_quantums), 0)} · gamma ${fmt(usd(x.gamma_quantums), 0)} · delta ${fmt(usd(x.delta_quantums), 0)} USDC`));
}
async function loadAdl() {
  if (!state.market) return;
  const market = state.market;
  const queues = await get(`/v1/markets/${encodeURIComponent(market)}/adl?limit=5`);
  if (market !== state.market) return;
  const box = $("adl");
  const column = (label, list) => {
    const part = el("div");
    part.append(el("span", "label", label));
    if (!list || !list.length) part.append(el("div", "muted", "empty"));
    for (const item of list || []) { const line = el("div"); line.append(`${item.rank}. `, accountLink(item.subaccount)); part.append(line); }
    return part;
  };
  box.replaceChildren(column("Longs", queues.longs), column("Shorts", queues.shorts));
  box.className = "small columns";
}

// ── Governance: the open proposals and the latest parameter changes ──────────────────────

async function loadGovernance() {
  const gov = await get("/v1/gov");
  const panel = $("gov-panel");
  document.body.dataset.governed = String(Boolean(gov.governed));
  panel.hidden = !gov.governed; // an ungoverned venue: its operator lists, nobody votes
  if (!gov.governed) return;
  const [open, changes] = await Promise.all([
    get("/v1/gov/proposals?status=open&limit=20"), get("/v1/gov/history?limit=8"),
  ]);
  const waits = gov.waits || {};
  $("gov-summary").textContent = `${gov.threshold ?? "–"} of ${(gov.council || []).length} · timelock ${waits.timelock || "–"}`;
  renderQueue(open);
  renderChanges(changes.items || []);
  document.body.dataset.govProposals = String(open.length);
}
function renderQueue(open) {
  const body = $("gov-queue");
  body.replaceChildren(...open.map((p) => {
    const tr = row([`#${p.proposal_id}`, p.status || "–", `${p.approvals_count ?? "–"}/${p.threshold ?? "–"}`, timelockText(p)],
                   `proposal ${p.status || ""}`);
    tr.title = [p.memo, ...(p.actions || []).map(actionText)].filter(Boolean).join("\n");
    return tr;
  }));
  if (!open.length) body.append(row(["no open proposals", "", "", ""], "muted"));
}
function timelockText(p) {
  // Queued: what is left of the timelock, as of the node's last block. Pending: approvals first.
  if (p.status !== "queued") return num(p.approvals_count) >= num(p.threshold) ? "ready to queue" : "approving";
  const left = num(p.timelock_left_ms);
  return left > 0 ? countdown(left) : "executable";
}
function actionText(action) {
  const kind = action.kind_name || String(action.kind);
  if (kind !== "set_param") return `${kind} ${action.target || ""}`.trim();
  return `${action.name} ${action.target || ""} → ${action.value_percent || action.value}`;
}
function renderChanges(items) {
  const list = $("gov-changes");
  list.replaceChildren(...items.map((c) => {
    const li = el("li");
    const name = String(c.name || "").split(".").slice(1).join(".");
    li.append(el("span", "muted", `${clock(timeMs(c))} `), el("b", "", name),
              document.createTextNode(` ${c.target || ""} ${c.old_value_percent || c.old_value} → ${c.new_value_percent || c.new_value} `),
              el("span", "muted", c.role_name || ""));
    li.title = c.name;
    return li;
  }));
  if (!items.length) list.append(el("li", "muted", "no parameter changes yet"));
}

// ── Blocks and the node ──────────────────────────────────────────────────────────────────

async function loadBlocks() {
  const headers = await get("/dashboard/api/blocks?limit=14");
  $("blocks").replaceChildren(...headers.map((h) => {
    const root = el("code", "", short(h.state_root));
    root.title = `state root ${h.state_root}\nblock hash ${h.block_hash}\n${new Date(timeMs(h)).toISOString()}`;
    return row([String(h.height), String(h.commands ?? "–"), root]);
  }));
  if (headers.length) setHeight(headers[0].height);
}
function setHeight(height) {
  state.height = num(height);
  const dev = state.info && state.info.dev ? " · dev" : "";
  $("node").textContent = `chain ${state.info ? state.info.chain_id : "–"}${dev} · height ${state.height}`;
}
async function loadInfo() {
  state.info = await get("/v1/info");
  setHeight(Math.max(state.height, num(state.info.height)));
  if (state.info.dev) await quietly(loadDevAccounts);
}
async function loadDevAccounts() {
  const accounts = await get("/dashboard/api/dev-accounts");
  const hint = $("dev-accounts");
  if (!accounts.length) {
    hint.textContent = "dev node: no trading accounts yet (run a bot: clearhouse maker BTC-PERP --size 100000 --faucet 1000000)";
    return;
  }
  hint.replaceChildren(document.createTextNode("dev accounts: "), ...accounts.slice(0, 4).map((a) => {
    const link = accountLink(a.address);
    link.classList.add("dev-account");
    return link;
  }));
}

// ── Start ────────────────────────────────────────────────────────────────────────────────

function every(ms, work) { quietly(work); setInterval(() => quietly(work), ms); }

function start() {
  $("account-form").addEventListener("submit", (event) => { event.preventDefault(); openAccount($("address").value); });
  window.addEventListener("resize", () => { renderCandles(); renderBook(); });
  connect();
  every(POLL_MS, loadMarkets);
  every(POLL_MS, loadBlocks);
  every(POLL_MS * 2, loadRisk);
  every(POLL_MS * 5, loadInfo);
  every(POLL_MS * 2, loadGovernance);
  every(POLL_MS * 5, loadCandles); // the trades stream moves the last candle in between
  every(POLL_MS * 2, loadAccount); // marks move without an account event: keep P&L current
  const asked = requested.get("account");
  if (asked) openAccount(asked);
}
start();
