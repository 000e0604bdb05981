// pkgsandbox's own source rule. GuardDog's threat_network_exfil_messenger also
// matches any line naming telegram and sendMessage, and a webhook URL with any
// token: a bot library and its docstring examples. This one wants what only a
// collector needs: a Discord webhook with a real-shaped id (17-20 digits) and
// secret (60+ characters), or a Telegram bot's token in its API URL.
rule pkgsandbox_messenger_secret
{
    meta:
        author = "pkgsandbox"
        description = "Hard-codes a live-shaped Discord webhook secret or Telegram bot token: where stolen data is sent"
        identifies = "threat.network.outbound"
        severity = "high"
        path_include = "*.py,*.pyx,*.pyi,*.pth"

    strings:
        $discord_webhook = /discord(app)?\.com\/api\/webhooks\/\d{17,20}\/[A-Za-z0-9_-]{60,}/
        $telegram_bot = /api\.telegram\.org\/bot\d{8,12}:[A-Za-z0-9_-]{30,}/

    condition:
        any of them
}
