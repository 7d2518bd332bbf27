//! A small builder for const metric families, assembled at scrape time from a snapshot
//! (node_exporter's const-metric style: no registry state, so no stale series).

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Pushes one gauge family per `(name, help, value)` row, each with a single series labelled
/// `labels` (absent when its value is).
pub(crate) fn gauge_rows<'a, V: ToF64>(
    out: &mut Vec<Family>,
    labels: &[(&str, &str)],
    rows: impl IntoIterator<Item = (&'a str, &'a str, Option<V>)>,
) {
    for (name, help, value) in rows {
        let mut f = Family::gauge(name, help);
        f.add_opt(labels, value);
        out.push(f);
    }
}

/// One metric family under construction.
pub struct Family {
    inner: MetricFamily,
    detail: bool,
}

impl Family {
    /// A gauge family.
    pub(crate) fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::GAUGE)
    }

    /// A counter family (the name must end in `_total`).
    pub(crate) fn counter(name: &str, help: &str) -> Self {
        debug_assert!(name.ends_with("_total"), "counter {name} must end in _total");
        Self::new(name, help, MetricType::COUNTER)
    }

    fn new(name: &str, help: &str, kind: MetricType) -> Self {
        let mut inner = MetricFamily::default();
        inner.set_name(name.to_owned());
        inner.set_help(help.to_owned());
        inner.set_field_type(kind);
        Self { inner, detail: false }
    }

    /// The same family, marked as detail: rendered only when a scrape asks for detail
    /// (`/metrics?detail=1`); the figures stay on `/status` either way.
    pub(crate) fn detail(mut self) -> Self {
        self.detail = true;
        self
    }

    /// Whether the family is rendered only on a detail scrape.
    pub(crate) fn is_detail(&self) -> bool {
        self.detail
    }

    /// Adds one sample.
    pub(crate) fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let pairs = labels
            .iter()
            .map(|(k, v)| {
                let mut p = LabelPair::default();
                p.set_name((*k).to_owned());
                p.set_value((*v).to_owned());
                p
            })
            .collect();
        let mut m = Metric::from_label(pairs);
        if self.inner.get_field_type() == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        self.inner.mut_metric().push(m);
        self
    }

    /// Adds one sample if the value is known; an unknown value leaves the series absent.
    pub(crate) fn add_opt<V: ToF64>(&mut self, labels: &[(&str, &str)], value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.add(labels, v.to_f64());
        }
        self
    }

    /// Whether no sample was added (such families are not rendered).
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.get_metric().is_empty()
    }

    /// The finished family.
    pub(crate) fn finish(self) -> MetricFamily {
        self.inner
    }
}

/// Numeric values that render as a sample.
pub(crate) trait ToF64 {
    /// The value as f64.
    fn to_f64(self) -> f64;
}

impl ToF64 for u64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl ToF64 for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}
