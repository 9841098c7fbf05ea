//! The daemon's panic policy. A thread that panics would leave a half-dead node behind: its
//! election port still answers votes while nothing elects any more, and its supervisor never
//! learns. So a panic anywhere in the daemon is logged at ERROR with the thread and the message,
//! and the process ends at once with [`EXIT_INTERNAL_ERROR`], for a supervisor to restart it (the
//! role of ZooKeeper's `ZooKeeperCriticalThread` handler, with an exit code of its own). Epoch files
//! are written atomically, so ending at any moment is safe.

/// Exit code after a panic in any thread (sysexits' `EX_SOFTWARE`, "internal software error").
pub const EXIT_INTERNAL_ERROR: i32 = 70;

/// Installs the policy for the whole process (`zkelect start`).
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let line = format!(
            "Thread {name} panicked{place}: {message}; exiting with code {EXIT_INTERNAL_ERROR} so that a supervisor \
             restarts the node"
        );
        if log::log_enabled!(log::Level::Error) {
            log::error!("{line}");
            log::logger().flush();
        } else {
            eprintln!("{line}");
        }
        std::process::exit(EXIT_INTERNAL_ERROR);
    }));
}
