//! A group command's progress: a bar, counts, and a matrix with one cell per device that fills in
//! as answers arrive; the stragglers can be retried with one click.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::tenths;
use crate::link::Link;
use crate::view::{Cell, FanoutView};

const CELL: f64 = 8.0;

/// What the canvas shows now: the command, its width in columns, and each cell as drawn.
#[derive(Default)]
struct Drawn {
    canvas: Option<web_sys::HtmlCanvasElement>,
    tid: Option<switchboard_protocol::Tid>,
    cols: usize,
    cells: Vec<Cell>,
}

/// Draws `f` on `canvas`, repainting only the cells that changed since the last call (a fan-out
/// to 10,000 devices repaints a frame's worth of answers, not the whole matrix).
fn draw(canvas: &web_sys::HtmlCanvasElement, f: &FanoutView, drawn: &mut Drawn) {
    let width = f64::from(canvas.client_width().max(160));
    let cols = ((width / CELL).floor() as usize).max(1);
    let rows = f.cells.len().div_ceil(cols).max(1);
    let fresh = drawn.canvas.as_ref() != Some(canvas)
        || drawn.tid != Some(f.tid)
        || drawn.cols != cols
        || drawn.cells.len() != f.cells.len();
    if fresh {
        drawn.canvas = Some(canvas.clone());
        // Resizing clears the canvas.
        canvas.set_width(width as u32);
        canvas.set_height((rows as f64 * CELL) as u32);
        drawn.tid = Some(f.tid);
        drawn.cols = cols;
        drawn.cells.clear();
    }
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
        for (i, _) in f
            .cells
            .iter()
            .enumerate()
            .filter(|(i, c)| **c == kind && (fresh || drawn.cells.get(*i) != Some(*c)))
        {
            let x = (i % cols) as f64 * CELL;
            let y = (i / cols) as f64 * CELL;
            ctx.fill_rect(x, y, CELL - 1.0, CELL - 1.0);
        }
    }
    drawn.cells.clone_from(&f.cells);
}

/// The open group command.
#[component]
pub fn FanoutMatrix() -> impl IntoView {
    let link = expect_context::<Link>();
    let view_sig = link.store.fanout_view;
    let canvas = NodeRef::<Canvas>::new();
    let drawn = StoredValue::new_local(Drawn::default());
    Effect::new(move |_| {
        view_sig.with(|f| {
            if let (Some(f), Some(c)) = (f, canvas.get()) {
                drawn.update_value(|d| draw(&c, f, d));
            }
        });
    });
    let progress = move || view_sig.with(|f| f.as_ref().map(|f| f.progress).unwrap_or_default());
    let tid = move || view_sig.with(|f| f.as_ref().map(|f| f.tid));
    view! {
        <Show when=move || view_sig.with(Option::is_some)>
            <section class="fanout" aria-label="group command"
                data-fanout=move || tid().map(|t| t.to_string()).unwrap_or_default()
                data-expected=move || progress().expected
                data-answered=move || progress().answered()
                data-succeeded=move || progress().succeeded
                data-contradicted=move || progress().contradicted
                data-complete=move || view_sig.with(|f| f.as_ref().is_some_and(|f| f.finished).to_string())>
                <h2>{move || view_sig.with(|f| f.as_ref().map(|f| format!("{} → {}", f.cmd, f.target)))}</h2>
                <div class="bar" role="progressbar" aria-valuemin="0"
                    aria-valuemax=move || progress().expected
                    aria-valuenow=move || progress().answered()>
                    <div class="fill" style:width=move || {
                        let p = progress();
                        let pct = if p.expected == 0 {
                            100.0
                        } else {
                            (p.answered() + p.timed_out) as f64 * 100.0 / p.expected as f64
                        };
                        format!("{}%", tenths(pct))
                    }></div>
                </div>
                <p class="counts">{move || {
                    let p = progress();
                    let all_in = view_sig.with(|f| f.as_ref().and_then(|f| f.round_trip_ms));
                    format!(
                        "{}/{} answered · {} succeeded · {} failed · {} rejected · {} no answer yet · {} timed out{}{}",
                        p.answered(), p.expected, p.succeeded, p.failed, p.rejected, p.pending, p.timed_out,
                        if p.contradicted > 0 { format!(" · {} contradicted", p.contradicted) } else { String::new() },
                        all_in.map(|ms| format!(" · all in {ms} ms")).unwrap_or_default()
                    )
                }}</p>
                <canvas class="matrix" node_ref=canvas aria-hidden="true"></canvas>
                <ul class="legend">
                    {Cell::ALL.iter().map(|c| view! {
                        <li><span class="swatch" style:background=c.colour()></span>{c.label()}</li>
                    }).collect_view()}
                </ul>
                <Show when=move || { progress().timed_out > 0 }>
                    <button data-action="retry-stragglers" on:click=move |_| {
                        if let Some(tid) = tid() {
                            link.retry_stragglers(tid);
                        }
                    }>
                        {move || format!("Retry {} stragglers", progress().timed_out)}
                    </button>
                </Show>
                <details class="not-ok">
                    <summary>"Devices not succeeded (first 50)"</summary>
                    // Listed once the command has finished: while answers stream in, walking
                    // every member per frame would cost more than the matrix itself.
                    <ul>{move || view_sig.with(|f| {
                        let f = f.as_ref().filter(|f| f.finished)?;
                        Some(f.devices
                            .iter()
                            .zip(&f.cells)
                            .filter(|(_, c)| **c != Cell::Succeeded)
                            .take(50)
                            .map(|(d, c)| view! { <li>{format!("{d}: {}", c.label())}</li> })
                            .collect_view())
                    })}</ul>
                </details>
            </section>
        </Show>
    }
}
