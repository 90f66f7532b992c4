//! A group command's progress: a bar, counts, and a matrix with one cell per device that fills in
//! as answers arrive; the stragglers can be retried with one click.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::link::Link;
use crate::view::{Cell, FanoutView};

const CELL: f64 = 8.0;

fn draw(canvas: &web_sys::HtmlCanvasElement, f: &FanoutView) {
    let width = f64::from(canvas.client_width().max(160));
    let cols = ((width / CELL).floor() as usize).max(1);
    let rows = f.cells.len().div_ceil(cols).max(1);
    canvas.set_width(width as u32);
    canvas.set_height((rows as f64 * CELL) as u32);
    let Some(ctx) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    for kind in Cell::ALL {
        ctx.set_fill_style_str(kind.colour());
        for (i, _) in f.cells.iter().enumerate().filter(|(_, c)| **c == kind) {
            let x = (i % cols) as f64 * CELL;
            let y = (i / cols) as f64 * CELL;
            ctx.fill_rect(x, y, CELL - 1.0, CELL - 1.0);
        }
    }
}

/// The open group command.
#[component]
pub fn FanoutMatrix() -> impl IntoView {
    let link = expect_context::<Link>();
    let view_sig = link.store.fanout_view;
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        view_sig.with(|f| {
            if let (Some(f), Some(c)) = (f, canvas.get()) {
                draw(&c, f);
            }
        });
    });
    move || {
        let f = view_sig.get()?;
        let tid = f.tid;
        let p = f.progress;
        let answered = f.progress.answered();
        let pct = if p.expected == 0 {
            100.0
        } else {
            (answered + p.timed_out) as f64 * 100.0 / p.expected as f64
        };
        let stragglers = p.timed_out;
        let not_ok: Vec<String> = f
            .devices
            .iter()
            .zip(&f.cells)
            .filter(|(_, c)| **c != Cell::Succeeded)
            .take(50)
            .map(|(d, c)| format!("{d}: {}", c.label()))
            .collect();
        Some(view! {
            <section class="fanout" aria-label="group command" data-fanout=tid.to_string()
                data-expected=p.expected data-answered=answered data-complete=f.finished.to_string()>
                <h2>{format!("{} → {}", f.cmd, f.target)}</h2>
                <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax=p.expected
                    aria-valuenow=answered>
                    <div class="fill" style:width=format!("{pct:.1}%")></div>
                </div>
                <p class="counts">{format!(
                    "{answered}/{} answered · {} succeeded · {} failed · {} rejected · {} no answer yet · {} timed out{}",
                    p.expected, p.succeeded, p.failed, p.rejected, p.pending, p.timed_out,
                    f.round_trip_ms.map(|ms| format!(" · all in {ms} ms")).unwrap_or_default()
                )}</p>
                <canvas class="matrix" node_ref=canvas aria-hidden="true"></canvas>
                <ul class="legend">
                    {Cell::ALL.iter().map(|c| view! {
                        <li><span class="swatch" style:background=c.colour()></span>{c.label()}</li>
                    }).collect_view()}
                </ul>
                <Show when=move || { stragglers > 0 }>
                    <button data-action="retry-stragglers" on:click=move |_| { link.retry_stragglers(tid); }>
                        {format!("Retry {stragglers} stragglers")}
                    </button>
                </Show>
                <details class="not-ok">
                    <summary>"Devices not succeeded (first 50)"</summary>
                    <ul>{not_ok.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
                </details>
            </section>
        })
    }
}
