//! A simulated device's life: booting from what survived (applying its saved configuration and
//! reporting what a previous life left unfinished), restarting on command, losing power
//! mid-command, and leaving cleanly.

use super::*;

impl Device {
    /// Starts from what survived (`from`) and applies the saved configuration.
    pub(super) async fn reboot(&mut self, from: Persisted) -> Vec<Reply> {
        let Persisted {
            device: mut p,
            gate: snapshot,
        } = from;
        p.boots += 1;
        if p.firmware.is_empty() {
            p.firmware = FACTORY_FIRMWARE.to_owned();
        }
        let cfg = p.saved_config.clone();
        let default_ms = u64::try_from(self.opts.telemetry.as_millis()).unwrap_or(0);
        self.state = DeviceState {
            light: cfg.light_on_boot.unwrap_or(false),
            led: false,
            telemetry_interval_ms: cfg.telemetry_interval_ms.unwrap_or(default_ms),
            config: cfg,
            pending_config: None,
            firmware: p.firmware.clone(),
            sequences: Default::default(),
            boots: p.boots,
        };
        let (gate, replies) = DeviceGate::restore(
            gate_config(&self.spec.id, &self.store),
            snapshot,
            &self.state,
            now(),
        );
        self.gate = gate;
        self.record = p;
        self.persist().await;
        self.state.sequences = self.gate.sequence_positions();
        if !self.inbox.is_empty() {
            tracing::info!(
                device = %self.spec.id,
                count = self.inbox.len(),
                "restart loses commands held back by injected delays; the application retransmits them"
            );
            self.inbox.clear();
        }
        self.schedule_telemetry();
        if !replies.is_empty() {
            self.note(format!(
                "boot {}: {} command(s) were cut off and are reported interrupted",
                self.state.boots,
                replies.len()
            ));
        } else {
            self.note(format!("boot {}", self.state.boots));
        }
        replies
    }

    /// Says goodbye (retained status offline), leaves once the broker has its answers (see
    /// `leaving`), and comes back after `delay`.
    pub(super) fn restart(&mut self, link: &mut Link, delay: Duration) {
        self.note(format!("restarting for {} ms", delay.as_millis()));
        let status = self.status(false);
        self.publish(link, status);
        self.leaving = Some((Instant::now() + LEAVE_WITHIN, delay));
    }

    /// Loses power mid-command: the connection drops without a word (the broker publishes the Last
    /// Will), the device boots again from storage and reports what it was doing as interrupted.
    pub(super) async fn power_cut(&mut self, link: &mut Link) {
        tracing::info!(device = %self.spec.id, "power cut mid-command (injected fault)");
        link.cut();
        self.went_offline();
        self.reboot_and_report(link).await;
    }

    /// Boots again and answers what the previous life left unfinished (queued until connected).
    pub(super) async fn reboot_and_report(&mut self, link: &mut Link) {
        // What is on disk is what the gate and the record hold once everything is saved.
        self.persist().await;
        let from = Persisted {
            device: self.record.clone(),
            gate: self.gate.snapshot(),
        };
        for r in self.reboot(from).await {
            self.respond(link, &r);
        }
    }

    /// Clean shutdown: retained status offline, DISCONNECT.
    pub(super) async fn go_offline(&mut self, link: &mut Link) {
        if link.session().is_connected() {
            let status = self.status(false);
            self.publish(link, status);
        }
        link.session_mut().disconnect(now());
        let mut events = Vec::new();
        link.flush(&mut events).await;
        self.went_offline();
    }
}
