//! What did not fit anywhere else: answers that match no command, malformed messages, errors.

use leptos::prelude::*;

use super::clock_time;
use crate::link::Link;

/// The notices list, newest first.
#[component]
pub fn Notices() -> impl IntoView {
    let link = expect_context::<Link>();
    let notices = link.store.notices;
    view! {
        <section class="notices" id="notices" aria-label="notices" aria-live="polite">
            <h2>"Notices"</h2>
            <ul>
                {move || notices.with(|n| n.iter().rev().take(50).map(|n| {
                    let class = format!("notice {}", n.level);
                    let line = format!("{} {}", clock_time(n.at), n.text);
                    view! { <li class=class>{line}</li> }
                }).collect_view())}
            </ul>
        </section>
    }
}
