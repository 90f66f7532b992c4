fn main() {
    leptos::mount::mount_to_body(switchboard_app::App);
}
