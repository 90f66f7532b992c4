//! One command in the history: its lifecycle, live.

use leptos::prelude::*;
use switchboard_protocol::Tid;

use super::clock_time;
use crate::clock::Clock;
use crate::link::Link;

/// A history row.
#[component]
pub fn HistoryRow(tid: Tid) -> impl IntoView {
    let link = expect_context::<Link>();
    let clock = expect_context::<Clock>();
    let Some(c) = link.store.command(&tid) else {
        return ().into_any();
    };
    let retry_in = move || {
        c.with(|c| {
            c.next_retry.filter(|_| !c.finished).map(|at| {
                let s = at.saturating_since(clock.0.get()).as_secs();
                format!("next retry in {s} s")
            })
        })
    };
    view! {
        <tr class=move || c.with(|c| c.class) data-tid=tid.to_string()
            data-phase=move || c.with(|c| c.status.clone())>
            <td>{move || c.with(|c| clock_time(c.created_at))}</td>
            <td>{move || c.with(|c| c.target.clone())}</td>
            <td>{move || c.with(|c| c.cmd.clone())}<small>{move || c.with(|c| c.detail.clone())}</small></td>
            <td class="status">
                {move || c.with(|c| c.status.clone())}
                {move || c.with(|c| c.late).then_some(" (late answer)")}
                {move || c.with(|c| c.ambiguous.map(|n| format!(" (ambiguous: {n} text commands were outstanding, matched to the oldest)")))}
                {move || c.with(|c| c.answer.clone().map(|a| format!(" · “{a}”")))}
                <small>{retry_in}</small>
            </td>
            <td>{move || c.with(|c| c.attempts)}</td>
            <td>{move || c.with(|c| c.round_trip_ms.map(|ms| format!("{ms} ms")).unwrap_or_default())}</td>
            <td>
                <Show when=move || c.with(|c| c.group)>
                    <button on:click=move |_| link.open_fanout(tid)>"matrix"</button>
                </Show>
            </td>
        </tr>
    }
    .into_any()
}
