// Progressive enhancement: keep the button disabled until all three boxes are ticked.
// Without JavaScript the `required` attributes and the server's own check still apply.
(function () {
  var form = document.getElementById("consent-form");
  if (!form) return;
  var boxes = form.querySelectorAll('input[type="checkbox"]');
  var submit = document.getElementById("consent-submit");
  function update() {
    var all = Array.prototype.every.call(boxes, function (box) { return box.checked; });
    submit.disabled = !all;
    submit.setAttribute("aria-disabled", String(!all));
  }
  Array.prototype.forEach.call(boxes, function (box) { box.addEventListener("change", update); });
  update();
})();
