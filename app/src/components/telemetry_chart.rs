//! The device's telemetry, drawn live as a small chart whose points follow the sampling rate.

use leptos::prelude::*;

use crate::store::DeviceView;

const W: f64 = 300.0;
const H: f64 = 60.0;

/// A sparkline of the last samples, spaced by their real time, with the rate in its caption.
#[component]
pub fn TelemetryChart(dev: RwSignal<DeviceView>) -> impl IntoView {
    let points = move || {
        dev.with(|d| {
            let (Some(first), Some(last)) = (d.telemetry.front(), d.telemetry.back()) else {
                return String::new();
            };
            // The last 30 s of samples: a faster rate draws denser points.
            let span = 30_000.0_f64;
            let t0 = (last.at as f64 - span).max(first.at as f64 - 1.0);
            d.telemetry
                .iter()
                .filter(|s| s.at as f64 >= t0)
                .map(|s| {
                    let x = (s.at as f64 - t0) / span * W;
                    let y = H - ((s.value - 14.0) / 12.0).clamp(0.0, 1.0) * H;
                    format!("{x:.1},{y:.1}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let caption = move || {
        dev.with(|d| match (d.telemetry_interval_ms, d.telemetry.back()) {
            (Some(ms), Some(s)) => format!("telemetry every {ms} ms · latest {:.1} °C", s.value),
            _ => "no telemetry yet (set an interval to start it)".to_owned(),
        })
    };
    view! {
        <figure class="telemetry" data-samples=move || dev.with(|d| d.telemetry.len())>
            <svg viewBox=format!("0 0 {W} {H}") width="100%" height="60" role="img" aria-label=caption>
                <polyline fill="none" stroke="currentColor" stroke-width="1.5" points=points />
            </svg>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}
