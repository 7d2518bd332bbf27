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
pub enum Kind {
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
pub struct Query {
    /// PromQL; may use `$namespace`, `$pod`, `$target` and `$__rate_interval`.
    pub expr: String,
    /// Grafana legend template, e.g. `{{pod}}`.
    pub legend: String,
}

/// Coloured steps: `(value, color)` above the base colour.
pub type Steps = Vec<(f64, &'static str)>;

/// One panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// What it shows and how to read it.
    pub description: String,
    /// The kind of panel.
    pub kind: Kind,
    /// Grafana unit id (`bytes`, `percentunit`, `s`, `short`, `ops`, `Bps`).
    pub unit: &'static str,
    /// Queries.
    pub queries: Vec<Query>,
    /// Threshold steps, drawn as lines and areas on time series.
    pub steps: Steps,
    /// Width in grid columns (of 24).
    pub width: u32,
}

impl Panel {
    /// A panel of `kind` with one query.
    pub fn new(kind: Kind, title: &str, unit: &'static str, expr: &str, legend: &str) -> Self {
        Self {
            title: title.to_owned(),
            description: String::new(),
            kind,
            unit,
            queries: vec![Query { expr: expr.to_owned(), legend: legend.to_owned() }],
            steps: Vec::new(),
            width: 12,
        }
    }

    /// Adds a query.
    pub fn query(mut self, expr: &str, legend: &str) -> Self {
        self.queries.push(Query { expr: expr.to_owned(), legend: legend.to_owned() });
        self
    }

    /// Sets the description.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Sets the threshold steps.
    pub fn steps(mut self, steps: Steps) -> Self {
        self.steps = steps;
        self
    }

    /// Sets the width (grid columns of 24).
    pub fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }
}

/// A titled row of panels.
#[derive(Debug, Clone)]
pub struct Row {
    /// Title.
    pub title: String,
    /// Panels, laid out left to right, wrapping at 24 columns.
    pub panels: Vec<Panel>,
}

/// A template variable: a `label_values` query with an "All" option.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Variable name (`namespace` → `$namespace`).
    pub name: &'static str,
    /// Label shown in Grafana.
    pub label: &'static str,
    /// `label_values(...)` query.
    pub query: String,
}

/// A whole dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Stable uid (links and provisioning keep working across versions).
    pub uid: &'static str,
    /// Title.
    pub title: &'static str,
    /// Description.
    pub description: &'static str,
    /// Template variables after `$datasource`.
    pub variables: Vec<Variable>,
    /// Rows.
    pub rows: Vec<Row>,
    /// Events marked on every time axis.
    pub annotations: Vec<Annotation>,
}

/// A Prometheus annotation query: a mark at every step where `expr` returns a series.
#[derive(Debug, Clone)]
pub struct Annotation {
    /// Its name in the dashboard's annotation list.
    pub name: &'static str,
    /// PromQL.
    pub expr: String,
    /// The mark's title (`{{label}}` templates).
    pub title: &'static str,
    /// The mark's text.
    pub text: &'static str,
    /// Labels shown as tags.
    pub tags: &'static str,
}

impl Dashboard {
    /// The Grafana JSON model.
    pub fn to_json(&self) -> Value {
        let mut panels = Vec::new();
        let (mut id, mut y) = (1u32, 0u32);
        for row in &self.rows {
            panels.push(json!({
                "type": "row", "id": id, "title": row.title, "collapsed": false,
                "gridPos": { "h": 1, "w": 24, "x": 0, "y": y }, "panels": []
            }));
            id += 1;
            y += 1;
            let mut x = 0;
            for p in &row.panels {
                if x + p.width > 24 {
                    x = 0;
                    y += 8;
                }
                panels.push(panel_json(p, id, x, y));
                id += 1;
                x += p.width;
            }
            y += 8;
        }
        let mut templating = vec![json!({
            "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": ""
        })];
        for v in &self.variables {
            templating.push(json!({
                "name": v.name, "label": v.label, "type": "query", "datasource": datasource(),
                "query": { "query": v.query, "refId": format!("{}-query", v.name) }, "definition": v.query,
                "includeAll": true, "multi": true, "allValue": ".*", "current": {}, "refresh": 2, "sort": 1,
                "hide": 0, "regex": ""
            }));
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
                "name": a.name, "datasource": datasource(), "enable": true, "hide": false,
                "iconColor": "red", "expr": a.expr, "step": "1m", "titleFormat": a.title,
                "textFormat": a.text, "tagKeys": a.tags, "useValueForTime": false
            })).collect::<Vec<Value>>() },
            "links": [],
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
    let instant = matches!(p.kind, Kind::Table | Kind::BarGauge | Kind::Stat);
    let targets: Vec<Value> = p
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            json!({
                "refId": char::from(b'A' + i as u8).to_string(), "expr": q.expr, "legendFormat": q.legend,
                "datasource": datasource(), "instant": instant && p.kind == Kind::Table, "range": !(p.kind == Kind::Table)
            })
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
    json!({
        "type": kind,
        "id": id,
        "title": p.title,
        "description": p.description,
        "datasource": datasource(),
        "gridPos": { "h": 8, "w": p.width, "x": x, "y": y },
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": p.unit,
                "custom": custom,
                "thresholds": { "mode": "absolute", "steps": steps },
                "color": { "mode": if p.steps.is_empty() { "palette-classic" } else { "thresholds" } }
            },
            "overrides": []
        },
        "options": options,
    })
}
