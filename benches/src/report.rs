//! The bench report: sections of rows, each a summary with its ratio to a
//! peer measured in the same run, and the targets as pass or fail.

use serde::Serialize;

use crate::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub summary: Summary,
    /// The row this one is compared with, and the ratio of the medians.
    pub peer: Option<String>,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub value: f64,
    pub limit: f64,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: String,
    /// Unit of the figures, e.g. "ms" or "ns".
    pub unit: String,
    /// Multiplier from the samples' unit to `unit`.
    #[serde(skip)]
    pub scale: f64,
    pub note: String,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

impl Section {
    pub fn new(title: &str, unit: &str, scale: f64, note: &str) -> Section {
        Section {
            title: title.to_owned(),
            unit: unit.to_owned(),
            scale,
            note: note.to_owned(),
            rows: Vec::new(),
            targets: Vec::new(),
        }
    }

    pub fn row(&mut self, name: &str, summary: Option<Summary>) {
        if let Some(summary) = summary {
            self.rows.push(Row {
                name: name.to_owned(),
                summary,
                peer: None,
                ratio: None,
            });
        }
    }

    pub fn median(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.summary.median)
    }

    /// Sets `name`'s ratio to `peer`'s median.
    pub fn compare(&mut self, name: &str, peer: &str) {
        let Some(p) = self.median(peer) else { return };
        if let Some(r) = self.rows.iter_mut().find(|r| r.name == name) {
            r.peer = Some(peer.to_owned());
            r.ratio = Some(r.summary.median / p);
        }
    }

    pub fn target(&mut self, what: &str, value: Option<f64>, limit: f64) {
        if let Some(value) = value {
            self.targets.push(Target {
                what: what.to_owned(),
                value,
                limit,
                met: value <= limit,
            });
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = format!("## {}\n\n{}\n\n", self.title, self.note);
        md.push_str(&format!(
            "| | n | min ({u}) | median ({u}) | p99 ({u}) | ratio |\n|---|---|---|---|---|---|\n",
            u = self.unit
        ));
        let fmt = |v: f64| {
            let v = v * self.scale;
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        for r in &self.rows {
            let ratio = match (&r.peer, r.ratio) {
                (Some(p), Some(x)) => format!("{x:.2}× {p}"),
                _ => String::new(),
            };
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.name,
                r.summary.n,
                fmt(r.summary.min),
                fmt(r.summary.median),
                fmt(r.summary.p99),
                ratio
            ));
        }
        for t in &self.targets {
            md.push_str(&format!(
                "\nTarget: {} ≤ {}: {:.2}, **{}**\n",
                t.what,
                t.limit,
                t.value,
                if t.met { "pass" } else { "fail" }
            ));
        }
        md.push('\n');
        md
    }
}

pub fn markdown(sections: &[Section]) -> String {
    let mut md = String::from(
        "# warren benchmarks\n\nEvery figure is min, median and p99 over runs taken interleaved \
         with its peers; a ratio compares medians taken in the same run.\n\n",
    );
    for s in sections {
        md.push_str(&s.markdown());
    }
    md
}
