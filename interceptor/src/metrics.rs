//! The interceptor's metrics: one registry, passed down explicitly.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub syscall: &'static str,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyscallLabel {
    pub syscall: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

fn duration_histogram() -> Histogram {
    // 1 µs to about 0.26 s.
    Histogram::new(exponential_buckets(1e-6, 4.0, 10))
}

pub struct Metrics {
    registry: Registry,
    pub notifications: Family<CallLabels, Counter>,
    pub duration: Family<SyscallLabel, Histogram, fn() -> Histogram>,
    pub containers: Gauge,
    pub ebpf_enabled: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let notifications = Family::<CallLabels, Counter>::default();
        registry.register(
            "warren_notifications",
            "Seccomp notifications handled, by syscall and action (emulated, continued, denied, error)",
            notifications.clone(),
        );
        let duration = Family::<SyscallLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register_with_unit(
            "warren_notification_duration",
            "Time from receiving a notification to answering it",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let containers = Gauge::default();
        registry.register(
            "warren_containers",
            "Containers registered with the interceptor",
            containers.clone(),
        );
        let ebpf_enabled = Gauge::default();
        registry.register(
            "warren_ebpf_enabled",
            "Whether the per-container eBPF probes are loaded (1) or not (0)",
            ebpf_enabled.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "warren_interceptor_build_info",
            "The interceptor's version",
            build,
        );
        Metrics {
            registry,
            notifications,
            duration,
            containers,
            ebpf_enabled,
        }
    }

    /// Adds a collector, read on every scrape.
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry.register_collector(collector);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn record(&self, syscall: &'static str, action: &'static str, seconds: f64) {
        self.notifications
            .get_or_create(&CallLabels { syscall, action })
            .inc();
        self.duration
            .get_or_create(&SyscallLabel { syscall })
            .observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(
    metrics: std::sync::Arc<Metrics>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut conn, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n =
                match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" {
                ("200 OK", metrics.encode())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.record("umount2", "denied", 0.000_01);
        let text = m.encode();
        assert!(
            text.contains("warren_notifications_total{syscall=\"umount2\",action=\"denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("warren_notification_duration_seconds_count{syscall=\"umount2\"} 1"),
            "{text}"
        );
        assert!(text.contains("warren_containers 0"), "{text}");
        assert!(text.contains("warren_ebpf_enabled 0"), "{text}");
        assert!(
            text.contains("warren_interceptor_build_info{version="),
            "{text}"
        );
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabel {
    pub container: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabels {
    pub container: String,
    pub family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub container: String,
    pub event: &'static str,
}

/// Per-container counts from the eBPF probes, read on scrape. A container
/// that is gone has no series.
#[derive(Debug)]
pub struct ProbeCounts {
    pub registry: std::sync::Arc<crate::container::Registry>,
    pub probes: std::sync::Arc<crate::ebpf::Probes>,
}

impl prometheus_client::collector::Collector for ProbeCounts {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let tracked: Vec<(String, u64)> = self
            .registry
            .containers()
            .iter()
            .filter_map(|c| {
                let t = c.tracking.lock().unwrap_or_else(|p| p.into_inner());
                t.as_ref().map(|t| (c.id.clone(), t.id))
            })
            .collect();
        let rows: Vec<(String, u64)> = tracked
            .iter()
            .map(|(id, cg)| (id.clone(), self.probes.syscalls(*cg)))
            .collect();
        let mut m = encoder.encode_descriptor(
            "warren_container_syscalls",
            "Syscalls entered by the processes of each container, counted in the kernel",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (container, n) in rows {
            let label = ContainerLabel { container };
            let family = m.encode_family(&label)?;
            prometheus_client::metrics::counter::ConstCounter::new(n).encode(family)?;
        }
        let mut m = encoder.encode_descriptor(
            "warren_container_syscalls_by_family",
            "Syscalls of each container by family (mount, file, net, process), counted in the kernel",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (container, cg) in &tracked {
            for (family, n) in self.probes.families(*cg) {
                let label = FamilyLabels {
                    container: container.clone(),
                    family,
                };
                prometheus_client::metrics::counter::ConstCounter::new(n)
                    .encode(m.encode_family(&label)?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "warren_intercepted_syscall_kernel",
            "Time each container's intercepted syscalls spent in seccomp, waiting for the interceptor, measured in the kernel",
            Some(&prometheus_client::registry::Unit::Seconds),
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        for (container, cg) in &tracked {
            let (buckets, sum) = self.probes.latency(*cg);
            let count = buckets.iter().map(|(_, n)| n).sum();
            let label = ContainerLabel {
                container: container.clone(),
            };
            m.encode_family(&label)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    sum, count, &buckets, None,
                )?;
        }
        prometheus_client::metrics::gauge::ConstGauge::new(self.probes.tracked() as i64).encode(
            encoder.encode_descriptor(
                "warren_ebpf_tracked_cgroups",
                "Entries in the probes' map of tracked container cgroups",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?,
        )?;
        let mut m = encoder.encode_descriptor(
            "warren_container_process_events",
            "Forks, execs and exits in each container, counted in the kernel",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (container, cg) in &tracked {
            for (event, n) in self.probes.events(*cg) {
                let label = EventLabels {
                    container: container.clone(),
                    event,
                };
                prometheus_client::metrics::counter::ConstCounter::new(n)
                    .encode(m.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}
