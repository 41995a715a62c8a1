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

  /* Line numbers beside a source textarea (no wrapping, so a number is a line), and the line
     an error names (`data-error-line`, set by the server's refusal or the live preview)
     highlighted in the gutter and across the text. */
  function numbered(textarea) {
    var box = document.createElement("div");
    box.className = "numbered";
    var gutter = document.createElement("div");
    gutter.className = "line-numbers";
    gutter.setAttribute("aria-hidden", "true");
    var mark = document.createElement("div");
    mark.className = "error-line-mark";
    mark.hidden = true;
    textarea.parentNode.insertBefore(box, textarea);
    box.appendChild(gutter);
    box.appendChild(textarea);
    box.appendChild(mark);
    textarea.setAttribute("wrap", "off");

    function lineHeight() {
      return parseFloat(getComputedStyle(textarea).lineHeight) || 16;
    }
    function paint() {
      var count = textarea.value.split("\n").length;
      var wanted = Number(textarea.dataset.errorLine || 0);
      if (gutter.childElementCount !== count || gutter.dataset.error !== String(wanted)) {
        gutter.textContent = "";
        for (var n = 1; n <= count; n++) {
          var line = document.createElement("div");
          line.textContent = String(n);
          if (n === wanted) { line.className = "error-line"; }
          gutter.appendChild(line);
        }
        gutter.dataset.error = String(wanted);
      }
      gutter.scrollTop = textarea.scrollTop;
      mark.hidden = !(wanted && wanted <= count);
      if (!mark.hidden) {
        var paddingTop = parseFloat(getComputedStyle(textarea).paddingTop) || 0;
        mark.style.top = (textarea.offsetTop + paddingTop + (wanted - 1) * lineHeight() - textarea.scrollTop) + "px";
        mark.style.height = lineHeight() + "px";
        mark.style.left = textarea.offsetLeft + "px";
        mark.style.width = textarea.clientWidth + "px";
      }
    }
    textarea.addEventListener("input", paint);
    textarea.addEventListener("scroll", paint);
    textarea.numberedPaint = paint;
    paint();
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
          var problems = result.problems || (result.errors || []).map(function (m) { return {message: m}; });
          problems.forEach(function (problem) {
            var item = document.createElement("li");
            item.textContent = problem.message;
            if (problem.detail) {  /* the budget's setting: for the administrator, folded */
              var detail = document.createElement("details");
              var summary = document.createElement("summary");
              summary.textContent = root.dataset.detailLabel;
              var body = document.createElement("p");
              body.textContent = problem.detail;
              detail.appendChild(summary);
              detail.appendChild(body);
              item.appendChild(detail);
            }
            errors.appendChild(item);
          });
          errors.hidden = !(result.errors || []).length;
          showProblems(result.problems || []);
          frame.setAttribute("sandbox", "");
          frame.srcdoc = '<meta http-equiv="Content-Security-Policy" content="' + policy + '">' + (result.html || "");
          root.dataset.previewed = String(mine);
        })
        .catch(function () { errors.hidden = false; errors.textContent = "…"; });
    }

    /* The live preview's error line replaces any earlier one in the language being edited. */
    function showProblems(problems) {
      current().querySelectorAll("textarea[data-part]").forEach(function (area) {
        var found = problems.filter(function (p) { return p.part === area.dataset.part && p.line; })[0];
        if (found) { area.dataset.errorLine = String(found.line); } else { delete area.dataset.errorLine; }
        if (area.numberedPaint) { area.numberedPaint(); }
      });
    }

    /* A save that changes the HTML and leaves the text as it was would send the old text. */
    function textWarnings() {
      root.querySelectorAll(".editor-language").forEach(function (block) {
        var html = block.querySelector('textarea[data-part="html_content"]');
        var text = block.querySelector('textarea[data-part="text_content"]');
        var warning = block.querySelector("[data-text-warning]");
        if (!html || !text || !warning) { return; }
        warning.hidden = !(html.value !== html.defaultValue && text.value === text.defaultValue && text.value.trim());
      });
    }

    root.querySelectorAll("[data-text-from-html]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = button.closest(".editor-language").querySelector('textarea[data-part="text_content"]');
        text.value = "";
        text.dispatchEvent(new Event("input", {bubbles: true}));
      });
    });
    root.querySelectorAll("textarea[data-part]").forEach(numbered);
    form.addEventListener("input", textWarnings);
    textWarnings();

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
