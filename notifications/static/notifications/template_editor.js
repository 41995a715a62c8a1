/* The template editor (admin_templates.py): list and mapping rows, the language switch, the
   live preview and the test send. The preview's HTML only ever goes into the sandboxed
   iframe (sandbox="", no scripts, no same origin) through srcdoc, with the frame's CSP. */
(function () {
  "use strict";

  function rows() {
    document.addEventListener("click", function (event) {
      var add = event.target.closest("[data-row-add]");
      var remove = event.target.closest("[data-row-remove]");
      if (add) {
        var list = add.closest("[data-row-list]");
        var all = list.querySelectorAll(".row-list-row");
        var copy = all[all.length - 1].cloneNode(true);
        copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        list.insertBefore(copy, add);
        copy.querySelector("input").focus();
      } else if (remove) {
        var row = remove.closest(".row-list-row");
        var owner = row.closest("[data-row-list]");
        if (owner.querySelectorAll(".row-list-row").length > 1) {
          row.remove();
        } else {
          row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        }
        owner.dispatchEvent(new Event("input", {bubbles: true}));
      }
    });
  }

  function editor(root) {
    var form = root.closest("form");
    var select = root.querySelector("#editor-language");
    var frame = root.querySelector(".preview-frame iframe");
    var subject = root.querySelector(".preview-subject");
    var text = root.querySelector(".preview-text");
    var errors = root.querySelector(".preview-errors");
    var policy = root.dataset.framePolicy;
    var timer = null;
    var sequence = 0;

    function current() {
      return root.querySelector('.editor-language[data-language="' + select.value + '"]');
    }

    function appendRows(data, widgetName, as) {
      form.querySelectorAll('[name="' + widgetName + '"]').forEach(function (input) { data.append(as, input.value); });
      form.querySelectorAll('[name="' + widgetName + '__name"]').forEach(function (input) { data.append(as + "__name", input.value); });
      form.querySelectorAll('[name="' + widgetName + '__value"]').forEach(function (input) { data.append(as + "__value", input.value); });
    }

    function refresh() {
      var language = current();
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      data.append("template", root.dataset.template || "");
      data.append("language", select.value);
      language.querySelectorAll("[data-part]").forEach(function (field) { data.append(field.dataset.part, field.value); });
      appendRows(data, "sample_variables", "variables");
      if (form.querySelector('[name="required_variables"]')) {
        data.append("declarations", "on");
        appendRows(data, "required_variables", "required_variables");
        appendRows(data, "optional_variables", "optional_variables");
        var layout = form.querySelector('[name="layout"]');
        data.append("layout", layout ? layout.value : "");
      }
      var mine = ++sequence;
      fetch(root.dataset.previewUrl, {method: "POST", body: data, credentials: "same-origin",
                                      headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (result) {
          if (mine !== sequence) { return; }
          subject.textContent = result.subject || "";
          text.textContent = result.text || "";
          errors.textContent = "";
          (result.errors || []).forEach(function (message) {
            var item = document.createElement("li");
            item.textContent = message;
            errors.appendChild(item);
          });
          errors.hidden = !(result.errors || []).length;
          frame.setAttribute("sandbox", "");
          frame.srcdoc = '<meta http-equiv="Content-Security-Policy" content="' + policy + '">' + (result.html || "");
          root.dataset.previewed = String(mine);
        })
        .catch(function () { errors.hidden = false; errors.textContent = "…"; });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }

    select.addEventListener("change", function () {
      root.querySelectorAll(".editor-language").forEach(function (block) {
        block.hidden = block.dataset.language !== select.value;
      });
      refresh();
    });
    form.addEventListener("input", later);
    root.querySelector("[data-preview-now]").addEventListener("click", refresh);
    root.querySelectorAll("[data-width]").forEach(function (button) {
      button.addEventListener("click", function () { frame.style.width = button.dataset.width + "px"; });
    });

    var send = root.querySelector("#send-test");
    if (send) {
      send.addEventListener("click", function (event) {
        event.preventDefault();
        var result = root.querySelector(".test-result");
        var data = new FormData(form);
        result.textContent = "…";
        fetch(send.getAttribute("formaction"), {method: "POST", body: data, credentials: "same-origin",
                                               headers: {"Accept": "application/json"}})
          .then(function (response) { return response.json(); })
          .then(function (answer) { result.textContent = answer.ok ? answer.message : answer.error; })
          .catch(function () { result.textContent = "…"; });
      });
    }
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    rows();
    var root = document.getElementById("template-editor");
    if (root) { editor(root); }
  });
})();
