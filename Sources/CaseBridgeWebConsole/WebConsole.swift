import CaseBridgeRPC

/// The staff console's files, compiled into the binary (SwiftPM embeds `Web/` at build time), by
/// the path a browser asks for: what the HTTPS console listener serves. Plain HTML, CSS and
/// JavaScript modules: no build step, nothing from another origin.
public enum WebConsole {
    public static let files: [String: StaticFile] = {
        let html = "text/html; charset=utf-8", script = "text/javascript; charset=utf-8"
        let table: [(String, String, [UInt8])] = [
            ("/", html, PackageResources.index_html),
            ("/index.html", html, PackageResources.index_html),
            ("/console.css", "text/css; charset=utf-8", PackageResources.console_css),
            ("/messages-en.json", "application/json; charset=utf-8", PackageResources.messages_en_json),
            ("/app.js", script, PackageResources.app_js),
            ("/api.js", script, PackageResources.api_js),
            ("/dom.js", script, PackageResources.dom_js),
            ("/i18n.js", script, PackageResources.i18n_js),
            ("/signin.js", script, PackageResources.signin_js),
            ("/queue.js", script, PackageResources.queue_js),
            ("/cases.js", script, PackageResources.cases_js),
            ("/case.js", script, PackageResources.case_js),
            ("/file.js", script, PackageResources.file_js),
            ("/admin.js", script, PackageResources.admin_js),
            ("/reports.js", script, PackageResources.reports_js),
            ("/duplicates.js", script, PackageResources.duplicates_js),
        ]
        return Dictionary(
            table.map { ($0.0, StaticFile(contentType: $0.1, bytes: $0.2)) },
            uniquingKeysWith: { a, _ in a }
        )
    }()
}
