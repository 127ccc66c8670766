// The dashboard's script: the "regressed only" filter and the search over cells (tables of
// class "filterable"), and the two-run picker. Vanilla, no library, nothing fetched.
(function () {
  "use strict";
  var only = document.getElementById("regressed-only");
  var search = document.getElementById("cell-search");
  var count = document.getElementById("shown-count");

  function filter() {
    var wanted = search ? search.value.trim().toLowerCase().split(/\s+/).filter(Boolean) : [];
    var regressedOnly = only ? only.checked : false;
    var shown = {};
    var all = {};
    var tables = document.querySelectorAll("table.filterable");
    for (var t = 0; t < tables.length; t++) {
      var rows = tables[t].tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        var row = rows[i];
        var name = (row.getAttribute("data-cell") || "").toLowerCase();
        var show = !(regressedOnly && row.getAttribute("data-regressed") !== "1");
        for (var w = 0; show && w < wanted.length; w++) {
          if (name.indexOf(wanted[w]) < 0) show = false;
        }
        row.classList.toggle("hidden", !show);
        if (t === 0) {
          all[name] = true;
          if (show) shown[name] = true;
        }
      }
    }
    if (count) {
      count.textContent = Object.keys(shown).length + " of " + Object.keys(all).length + " shown";
    }
  }
  // index.html#regressed-only opens with the filter on: a link that shows only what regressed.
  if (only && window.location.hash === "#regressed-only") only.checked = true;
  if (only) only.addEventListener("change", filter);
  if (search) search.addEventListener("input", filter);
  if (only || search) filter();

  var data = document.getElementById("picker-data");
  if (!data) return;
  var picker = JSON.parse(data.textContent);
  var baseline = document.getElementById("pick-baseline");
  var current = document.getElementById("pick-current");
  var message = document.getElementById("pick-message");
  function fill(select, chosen) {
    for (var i = 0; i < picker.runs.length; i++) {
      var option = document.createElement("option");
      option.value = option.textContent = picker.runs[i];
      select.appendChild(option);
    }
    if (chosen < picker.runs.length) select.selectedIndex = chosen;
  }
  fill(baseline, 1);
  fill(current, 0);
  if (picker.runs.length < 2) {
    message.textContent = "Fewer than two runs have their merged report here: nothing to compare.";
  }
  document.getElementById("pick-go").addEventListener("click", function () {
    var name = baseline.value + "__" + current.value;
    if (picker.built.indexOf(name) >= 0) {
      window.location.href = "compare/" + encodeURIComponent(name) + ".html";
    } else {
      message.textContent = "Run " + current.value + " against run " + baseline.value +
        " is not built. Build it with: " + picker.command + " --compare " + baseline.value + " " + current.value;
    }
  });
})();
