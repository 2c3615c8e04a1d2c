// Reviewing on a job's page, as labelling tools do: one key per class (1..9) confirms or
// corrects the image shown, S skips, and the next image follows. "Review next" takes the
// images from the review queue (least sure first, in turn per class); clicking a grid image
// reviews that one, and then the grid's next ones.
(function () {
  "use strict";

  var panel = document.getElementById("review");
  var card = document.getElementById("review-card");
  if (!panel || !card) { return; }
  var jobId = panel.dataset.job;
  var current = null;
  var mode = "queue";
  var skipped = {};
  var busy = false;

  function byId(id) { return document.getElementById(id); }
  function baseName(uri) { return uri.slice(uri.lastIndexOf("/") + 1); }

  function tileFor(predictionId) {
    return document.querySelector('.tile[data-prediction="' + predictionId + '"]');
  }

  function show(prediction) {
    current = prediction;
    card.hidden = false;
    card.dataset.prediction = String(prediction.id);
    byId("review-image").src = "/api/v1/predictions/" + prediction.id + "/thumbnail";
    byId("review-image").alt = baseName(prediction.uri);
    byId("review-name").textContent = baseName(prediction.uri);
    byId("review-model").textContent = prediction.label;
    byId("review-confidence").textContent =
      prediction.confidence === null ? "" : prediction.confidence.toFixed(3);
    byId("review-previous").textContent =
      prediction.reviewed_label ? "reviewed before as " + prediction.reviewed_label : "";
    document.querySelectorAll(".tile.reviewing").forEach(function (tile) {
      tile.classList.remove("reviewing");
    });
    var tile = tileFor(prediction.id);
    if (tile) { tile.classList.add("reviewing"); }
  }

  function finish(message) {
    current = null;
    card.hidden = true;
    delete card.dataset.prediction;
    byId("review-status").textContent = message;
    panel.dataset.done = "yes";
  }

  function nextFromQueue() {
    var asked = Object.keys(skipped).length + 20;
    fetch("/api/v1/jobs/" + jobId + "/review-queue?limit=" + Math.min(asked, 500),
          {headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (items) {
        var next = items.find(function (item) { return !skipped[item.id]; });
        if (next) { show(next); } else { finish("Nothing left to review in this job."); }
      });
  }

  function tilePrediction(tile) {
    var confidence = tile.dataset.confidence;
    return {id: Number(tile.dataset.prediction), uri: tile.dataset.uri, label: tile.dataset.label,
            confidence: confidence === "" ? null : Number(confidence),
            reviewed_label: tile.dataset.reviewed || null};
  }

  function nextFromGrid() {
    var tiles = [].slice.call(document.querySelectorAll('.tile[data-label]:not([data-label=""])'));
    var index = tiles.indexOf(tileFor(current ? current.id : -1));
    var next = tiles[index + 1];
    if (next) { show(tilePrediction(next)); } else { finish("End of this page of images."); }
  }

  function advance() {
    if (mode === "queue") { nextFromQueue(); } else { nextFromGrid(); }
  }

  function submit(label) {
    if (!current || busy) { return; }
    busy = true;
    var prediction = current;
    var body = new URLSearchParams({csrf: panel.dataset.csrf, prediction_id: String(prediction.id),
                                    label: label});
    fetch("/jobs/" + jobId + "/reviews", {method: "POST", body: body,
                                          headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().catch(function () { return {detail: response.statusText}; })
          .then(function (answer) {
            if (!response.ok) { throw new Error(answer.detail || response.statusText); }
            return answer;
          });
      })
      .then(function (review) {
        byId("review-reviewed").textContent = String(review.counts.reviewed);
        byId("review-corrected").textContent = String(review.counts.corrected);
        byId("review-status").textContent = baseName(prediction.uri) + ": " +
          (review.confirmed ? "confirmed " : "corrected to ") + review.reviewed_label;
        var tile = tileFor(prediction.id);
        if (tile) {
          tile.dataset.reviewed = review.reviewed_label;
          tile.querySelector(".reviewed").textContent = "reviewed: " + review.reviewed_label;
        }
        busy = false;
        advance();
      })
      .catch(function (error) {
        busy = false;
        byId("review-status").textContent = "not saved: " + error.message;
      });
  }

  function skip() {
    if (!current) { return; }
    skipped[current.id] = true;
    advance();
  }

  byId("review-next").addEventListener("click", function () {
    mode = "queue";
    delete panel.dataset.done;
    nextFromQueue();
  });
  byId("review-skip").addEventListener("click", skip);
  panel.querySelectorAll("button.review-label").forEach(function (button) {
    button.addEventListener("click", function () { submit(button.dataset.label); });
  });
  document.querySelectorAll('.tile[data-label]:not([data-label=""]) img').forEach(function (image) {
    image.addEventListener("click", function () {
      mode = "grid";
      delete panel.dataset.done;
      show(tilePrediction(image.closest(".tile")));
      panel.scrollIntoView();
    });
  });
  document.addEventListener("keydown", function (event) {
    if (!current || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target.tagName;
    if (target === "INPUT" || target === "SELECT" || target === "TEXTAREA") { return; }
    if (event.key === "s" || event.key === "S") { event.preventDefault(); skip(); return; }
    var button = panel.querySelector('button.review-label[data-key="' + event.key + '"]');
    if (button) { event.preventDefault(); submit(button.dataset.label); }
  });
}());
