/// Placeholder until the dashboard lands.
enum DashboardPage {
    static let html = "<!doctype html><title>weft</title>"
}
