//! One command in the history: its lifecycle, live. What never changes (when it was sent, to
//! whom, what) is drawn once; the rest follows the command's signal.

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
    let (sent, target, cmd, detail, group) = c.with_untracked(|c| {
        (
            clock_time(c.created_at),
            c.target.clone(),
            c.cmd.clone(),
            c.detail.clone(),
            c.group,
        )
    });
    let retry_at = Memo::new(move |_| c.with(|c| c.next_retry.filter(|_| !c.finished)));
    let retry_in = move || {
        retry_at.get().map(|at| {
            let s = at.saturating_since(clock.0.get()).as_secs();
            format!("next retry in {s} s")
        })
    };
    let status = move || {
        c.with(|c| {
            let mut s = c.status.clone();
            if c.late {
                s.push_str(" (late answer)");
            }
            if let Some(n) = c.ambiguous {
                s.push_str(&format!(
                    " (ambiguous: {n} text commands were outstanding, matched to the oldest)"
                ));
            }
            if let Some(a) = &c.answer {
                s.push_str(&format!(" · “{a}”"));
            }
            s
        })
    };
    let matrix =
        group.then(|| view! { <button on:click=move |_| link.open_fanout(tid)>"matrix"</button> });
    view! {
        <tr class=move || c.with(|c| c.class) data-tid=tid.to_string()
            data-phase=move || c.with(|c| c.status.clone())>
            <td>{sent}</td>
            <td>{target}</td>
            <td>{cmd}<small>{detail}</small></td>
            <td class="status">{status}<small>{retry_in}</small></td>
            <td>{move || c.with(|c| c.attempts)}</td>
            <td>{move || c.with(|c| c.round_trip_ms.map(|ms| format!("{ms} ms")).unwrap_or_default())}</td>
            <td>{matrix}</td>
        </tr>
    }
    .into_any()
}
