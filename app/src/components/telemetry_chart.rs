//! The device's telemetry, drawn live as a small chart whose points follow the sampling rate.

use leptos::prelude::*;

use super::tenths;
use crate::device_view::DeviceView;

const W: f64 = 300.0;
const H: f64 = 60.0;

/// A sparkline of the last samples, spaced by their real time, with the rate in its caption.
#[component]
pub fn TelemetryChart(dev: ReadSignal<DeviceView>) -> impl IntoView {
    // Sample positions: x by the device's own clock over the samples kept (at most 30 s), so a
    // faster rate visibly packs the points closer; y by value.
    let coords = move || {
        dev.with(|d| {
            let (Some(first), Some(last)) = (d.telemetry.front(), d.telemetry.back()) else {
                return Vec::new();
            };
            let span = ((last.at - first.at) as f64).clamp(1_000.0, 30_000.0);
            let t0 = last.at as f64 - span;
            d.telemetry
                .iter()
                .filter(|s| s.at as f64 >= t0)
                .map(|s| {
                    let x = (s.at as f64 - t0) / span * (W - 4.0) + 2.0;
                    let y = H - 2.0 - ((s.value - 14.0) / 12.0).clamp(0.0, 1.0) * (H - 4.0);
                    (x, y)
                })
                .collect::<Vec<_>>()
        })
    };
    let points = move || {
        coords()
            .iter()
            .map(|(x, y)| format!("{},{}", tenths(*x), tenths(*y)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let dots = move || {
        coords()
            .into_iter()
            .map(
                |(x, y)| view! { <circle cx=tenths(x) cy=tenths(y) r="1.8" fill="currentColor" /> },
            )
            .collect_view()
    };
    let caption = move || {
        dev.with(|d| match (d.telemetry_interval_ms, d.telemetry.back()) {
            (Some(ms), Some(s)) => {
                format!("telemetry every {ms} ms · latest {} °C", tenths(s.value))
            }
            _ => "no telemetry yet (set an interval to start it)".to_owned(),
        })
    };
    view! {
        <figure class="telemetry" data-samples=move || dev.with(|d| d.telemetry.len())>
            <svg viewBox=format!("0 0 {} {}", W as u32, H as u32) width="100%" height="60" role="img" aria-label=caption>
                <polyline fill="none" stroke="currentColor" stroke-width="1" opacity="0.5" points=points />
                {dots}
            </svg>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}
