{
  "targets": [
    {
      "target_name": "bpfops",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/netns.cc",
        "src/object.cc",
        "src/pins_maps.cc",
        "src/links.cc",
        "src/perf_links.cc",
        "src/legacy_attach.cc",
        "src/observe.cc",
        "src/probes.cc",
        "src/map_add.cc",
        "src/perf_buffer.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf"]
    }
  ]
}
