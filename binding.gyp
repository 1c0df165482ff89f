{
  "variables": {
    "netheal_werror%": 0
  },
  "targets": [
    {
      "target_name": "netheal",
      "conditions": [
        ["OS!='linux'", {
          "actions": [{
            "action_name": "linux_only",
            "inputs": [], "outputs": ["linux_only"],
            "action": ["sh", "-c", "echo 'netheal: the native addon is Linux-only (rtnetlink, sock_diag, ICMP sockets)' >&2; exit 1"]
          }]
        }],
        ["netheal_werror==1", { "cflags_cc": ["-Werror"] }]
      ],
      "sources": [
        "native/addon.cc",
        "native/netns.cc",
        "native/netlink_socket.cc",
        "native/icmp_socket.cc",
        "native/notify.cc",
        "native/tun.cc",
        "native/service.cc",
        "native/sock_destroy.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc!": ["-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
