// @ts-check
// Just enough PromQL reading for the checks on deploy/: the metric names a query selects and the
// label names it uses (in matchers, in by/without/on/ignoring lists, and the label of Grafana's
// label_values()). Not a parser: the expressions here are ours and simple, and a real Prometheus
// evaluates them in test/prometheus-server.test.js.
'use strict';

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * Metric selectors of an expression, each with the label names the expression uses near it.
 * Grouping labels are credited to every metric of the expression.
 * @param {string} expr
 * @returns {Array<{ name: string, labels: string[] }>}
 */
function metricSelectors(expr) {
  const selectors = [];
  const grouping = [];
  // label_values(metric{...}, label): the second argument is a label name.
  let text = expr.replace(/label_values\(\s*([^,]+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)/g, (_, selector, label) => { grouping.push(label); return selector; });
  // Strings first: label values may hold anything.
  text = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw, list) => {
    for (const label of list.split(',').map((/** @type {string} */ s) => s.trim()).filter(Boolean)) grouping.push(label);
    return ' ';
  });
  text = text.replace(/\[[^\]]*\]/g, ' ');
  const token = /([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?/g;
  let m;
  while ((m = token.exec(text)) !== null) {
    const [, name, matchers, call] = m;
    if (call !== undefined || KEYWORDS.has(name.toLowerCase()) || name.startsWith('$')) continue;
    if (/^\d/.test(name)) continue;
    const labels = matchers === undefined ? [] : [...matchers.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]);
    selectors.push({ name, labels });
  }
  for (const selector of selectors) for (const label of grouping) if (!selector.labels.includes(label)) selector.labels.push(label);
  return selectors;
}

/**
 * Every query of a Grafana dashboard: panel targets (rows' nested panels too) and query variables.
 * @param {any} dashboard
 * @returns {Array<{ title: string, expr: string }>}
 */
function dashboardQueries(dashboard) {
  const queries = [];
  const visit = (/** @type {any[]} */ panels) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) if (typeof target.expr === 'string') queries.push({ title: panel.title, expr: target.expr });
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const expr = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (typeof expr === 'string') queries.push({ title: `variable ${variable.name}`, expr });
  }
  return queries;
}

module.exports = { metricSelectors, dashboardQueries };
