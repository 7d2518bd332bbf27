//! A small builder for Grafana dashboard JSON (schema 39): rows of panels laid out on the
//! 24-column grid, template variables, units and threshold steps. Produces `serde_json::Value`s
//! whose key order is stable, so generated files diff cleanly.

use serde_json::{json, Value};

/// The Prometheus data source every panel uses: the `$datasource` template variable.
fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// What a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Lines over time.
    TimeSeries,
    /// The current value, big.
    Stat,
    /// Horizontal bars, one per series (rankings).
    BarGauge,
    /// Rows of series (instant query).
    Table,
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// PromQL; may use `$cluster`, `$job`, `$namespace`, `$pod`, `$target` and `$__rate_interval`.
    pub(crate) expr: String,
    /// Grafana legend template, e.g. `{{pod}}`.
    pub(crate) legend: String,
}

/// Coloured steps: `(value, color)` above the base colour.
pub(crate) type Steps = Vec<(f64, &'static str)>;

/// One panel.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// Title.
    pub(crate) title: String,
    /// What it shows and how to read it.
    pub(crate) description: String,
    /// The kind of panel.
    pub(crate) kind: Kind,
    /// Grafana unit id (`bytes`, `percentunit`, `s`, `short`, `ops`, `Bps`).
    pub(crate) unit: &'static str,
    /// Queries.
    pub(crate) queries: Vec<Query>,
    /// Threshold steps, drawn as lines and areas on time series.
    pub(crate) steps: Steps,
    /// Width in grid columns (of 24).
    pub(crate) width: u32,
    /// The axis (or gauge) range; `(0, 1)` for every ratio (`percentunit`) panel.
    pub(crate) range: Option<(f64, f64)>,
    /// Data links on every value (e.g. a drill-down to another dashboard).
    pub(crate) links: Vec<Link>,
    /// Table columns hidden besides `Time` (e.g. `Value` when it is always 1).
    pub(crate) hidden_columns: Vec<&'static str>,
}

/// A data link: a URL template with Grafana's `${__field.labels.*}`, `${__data.fields.*}` and
/// `${var:queryparam}` interpolations.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// What the link menu shows.
    pub(crate) title: String,
    /// The URL template.
    pub(crate) url: String,
}

impl Panel {
    /// A panel of `kind` with one query. A ratio (`percentunit`) panel gets the range 0..1.
    pub(crate) fn new(kind: Kind, title: &str, unit: &'static str, expr: &str, legend: &str) -> Self {
        Self {
            title: title.to_owned(),
            description: String::new(),
            kind,
            unit,
            queries: vec![Query { expr: expr.to_owned(), legend: legend.to_owned() }],
            steps: Vec::new(),
            width: 12,
            range: (unit == "percentunit").then_some((0.0, 1.0)),
            links: Vec::new(),
            hidden_columns: Vec::new(),
        }
    }

    /// Adds a data link.
    pub(crate) fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Hides a table column besides `Time`.
    pub(crate) fn hide_column(mut self, column: &'static str) -> Self {
        self.hidden_columns.push(column);
        self
    }

    /// Adds a query.
    pub(crate) fn query(mut self, expr: &str, legend: &str) -> Self {
        self.queries.push(Query { expr: expr.to_owned(), legend: legend.to_owned() });
        self
    }

    /// Sets the description.
    pub(crate) fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Sets the threshold steps.
    pub(crate) fn steps(mut self, steps: Steps) -> Self {
        self.steps = steps;
        self
    }

    /// Sets the width (grid columns of 24).
    pub(crate) fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }
}

/// A titled row of panels.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Title.
    pub(crate) title: String,
    /// Panels, laid out left to right, wrapping at 24 columns.
    pub(crate) panels: Vec<Panel>,
    /// Collapsed when the dashboard opens (its panels load when it is expanded).
    pub(crate) collapsed: bool,
}

impl Row {
    /// An expanded row.
    pub(crate) fn open(title: &str, panels: Vec<Panel>) -> Self {
        Self { title: title.to_owned(), panels, collapsed: false }
    }

    /// A collapsed row.
    pub(crate) fn collapsed(title: &str, panels: Vec<Panel>) -> Self {
        Self { title: title.to_owned(), panels, collapsed: true }
    }
}

/// A template variable: a `label_values` query.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    /// Variable name (`namespace` → `$namespace`).
    pub(crate) name: &'static str,
    /// Label shown in Grafana.
    pub(crate) label: &'static str,
    /// `label_values(...)` query.
    pub(crate) query: String,
    /// Multi-value with an "All" option (`.*`); otherwise one value.
    pub(crate) all: bool,
    /// Hidden from the variable bar (kubernetes-mixin hides `cluster` unless `showMultiCluster`).
    pub(crate) hidden: bool,
}

/// A whole dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Stable uid (links and provisioning keep working across versions).
    pub(crate) uid: &'static str,
    /// Title.
    pub(crate) title: &'static str,
    /// Description.
    pub(crate) description: &'static str,
    /// Template variables after `$datasource`.
    pub(crate) variables: Vec<Variable>,
    /// Rows.
    pub(crate) rows: Vec<Row>,
    /// Events marked on every time axis.
    pub(crate) annotations: Vec<Annotation>,
}

/// A Prometheus annotation query: a mark at every step where `expr` returns a series (a region
/// while it keeps returning it).
#[derive(Debug, Clone)]
pub(crate) struct Annotation {
    /// Its name in the dashboard's annotation list.
    pub(crate) name: &'static str,
    /// Shown when the dashboard opens (the others are a toggle away).
    pub(crate) enable: bool,
    /// Mark colour.
    pub(crate) color: &'static str,
    /// PromQL.
    pub(crate) expr: String,
    /// The mark's title (`{{label}}` templates).
    pub(crate) title: &'static str,
    /// The mark's text.
    pub(crate) text: &'static str,
    /// Labels shown as tags.
    pub(crate) tags: &'static str,
}

impl Dashboard {
    /// The Grafana JSON model. A collapsed row carries its panels inside it, as Grafana saves it.
    pub(crate) fn to_json(&self) -> Value {
        let mut panels = Vec::new();
        let (mut id, mut y) = (1u32, 0u32);
        for row in &self.rows {
            let row_id = id;
            let row_y = y;
            id += 1;
            y += 1;
            let mut inside = Vec::new();
            let mut x = 0;
            for p in &row.panels {
                if x + p.width > 24 {
                    x = 0;
                    y += 8;
                }
                inside.push(panel_json(p, id, x, y));
                id += 1;
                x += p.width;
            }
            y += 8;
            // A collapsed row takes one grid line; its panels keep the places they get when opened.
            if row.collapsed {
                y = row_y + 1;
            }
            let nested = if row.collapsed { std::mem::take(&mut inside) } else { Vec::new() };
            panels.push(json!({
                "type": "row", "id": row_id, "title": row.title, "collapsed": row.collapsed,
                "gridPos": { "h": 1, "w": 24, "x": 0, "y": row_y }, "panels": nested
            }));
            panels.extend(inside);
        }
        let mut templating = vec![json!({
            "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": ""
        })];
        for v in &self.variables {
            let mut var = json!({
                "name": v.name, "label": v.label, "type": "query", "datasource": datasource(),
                "query": { "query": v.query, "refId": format!("{}-query", v.name) }, "definition": v.query,
                "includeAll": v.all, "multi": v.all, "current": {}, "refresh": 2, "sort": 1,
                "hide": if v.hidden { 2 } else { 0 }, "regex": ""
            });
            if v.all {
                var["allValue"] = json!(".*");
            }
            templating.push(var);
        }
        json!({
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["leakwatch"],
            "editable": true,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": 39,
            "time": { "from": "now-6h", "to": "now" },
            "timezone": "browser",
            "version": 1,
            "templating": { "list": templating },
            "annotations": { "list": self.annotations.iter().map(|a| json!({
                "name": a.name, "datasource": datasource(), "enable": a.enable, "hide": false,
                "iconColor": a.color, "expr": a.expr, "step": "1m", "titleFormat": a.title,
                "textFormat": a.text, "tagKeys": a.tags, "useValueForTime": false
            })).collect::<Vec<Value>>() },
            // The other leakwatch dashboards, keeping the time range and the variables (node-mixin).
            "links": [{
                "title": "leakwatch", "type": "dashboards", "tags": ["leakwatch"], "asDropdown": true,
                "includeVars": true, "keepTime": true, "targetBlank": false, "icon": "external link",
                "tooltip": "", "url": ""
            }],
            "panels": panels,
        })
    }

    /// Every query of every panel.
    pub fn exprs(&self) -> impl Iterator<Item = &str> + '_ {
        self.rows.iter().flat_map(|r| r.panels.iter()).flat_map(|p| p.queries.iter()).map(|q| q.expr.as_str())
    }

    /// Every annotation query (they return data only when their event happened).
    pub fn annotation_exprs(&self) -> impl Iterator<Item = &str> + '_ {
        self.annotations.iter().map(|a| a.expr.as_str())
    }
}

fn panel_json(p: &Panel, id: u32, x: u32, y: u32) -> Value {
    let table = p.kind == Kind::Table;
    let targets: Vec<Value> = p
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut target = json!({
                "refId": char::from(b'A' + i as u8).to_string(), "expr": q.expr, "legendFormat": q.legend,
                "datasource": datasource(), "instant": table, "range": !table
            });
            // One row per series with its labels as columns (not one frame per series).
            if table {
                target["format"] = json!("table");
            }
            target
        })
        .collect();
    let mut steps = vec![json!({ "color": "green", "value": null })];
    steps.extend(p.steps.iter().map(|(v, c)| json!({ "color": c, "value": v })));
    let (kind, options, custom) = match p.kind {
        Kind::TimeSeries => (
            "timeseries",
            json!({ "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
                    "tooltip": { "mode": "multi", "sort": "desc" } }),
            json!({ "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                    "thresholdsStyle": { "mode": if p.steps.is_empty() { "off" } else { "line+area" } } }),
        ),
        Kind::Stat => (
            "stat",
            json!({ "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                    "colorMode": "value", "graphMode": "area", "textMode": "auto" }),
            json!({}),
        ),
        Kind::BarGauge => (
            "bargauge",
            json!({ "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                    "orientation": "horizontal", "displayMode": "gradient", "showUnfilled": true }),
            json!({}),
        ),
        Kind::Table => (
            "table",
            json!({ "showHeader": true, "cellHeight": "sm" }),
            json!({ "align": "auto", "cellOptions": { "type": "auto" } }),
        ),
    };
    // Series of a time series get the palette's colours (one per pod); threshold colours are
    // for single values (stat, bar gauge, table cells). The levels still show as lines and bands.
    let color = if p.kind != Kind::TimeSeries && !p.steps.is_empty() { "thresholds" } else { "palette-classic" };
    let mut defaults = json!({
        "unit": p.unit,
        "custom": custom,
        "thresholds": { "mode": "absolute", "steps": steps },
        "color": { "mode": color },
        "links": p.links.iter().map(|l| json!({ "title": l.title, "url": l.url })).collect::<Vec<Value>>()
    });
    if let Some((min, max)) = p.range {
        defaults["min"] = json!(min);
        defaults["max"] = json!(max);
    }
    let mut panel = json!({
        "type": kind,
        "id": id,
        "title": p.title,
        "description": p.description,
        "datasource": datasource(),
        "gridPos": { "h": 8, "w": p.width, "x": x, "y": y },
        "targets": targets,
        "fieldConfig": { "defaults": defaults, "overrides": [] },
        "options": options,
    });
    if table {
        // The instant query's timestamp column says nothing; neither does a constant value.
        let mut hidden = serde_json::Map::new();
        for column in std::iter::once("Time").chain(p.hidden_columns.iter().copied()) {
            hidden.insert(column.to_owned(), json!(true));
        }
        panel["transformations"] = json!([{
            "id": "organize",
            "options": { "excludeByName": hidden, "indexByName": {}, "renameByName": {} }
        }]);
    }
    panel
}
