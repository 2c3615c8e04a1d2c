// Progress bars: set each bar's width, then, while its job runs, ask the API for the job
// once a second and move the bar. A job page reloads once its job ends (a done job once its
// report is written too, a moment later), to show the final counts and the plots.
(function () {
  "use strict";

  function show(element, job) {
    var percent = Math.round(job.progress * 1000) / 10;
    var bar = element.querySelector(".bar");
    bar.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
    element.querySelector(".progress-text").textContent = Math.round(percent) + "%";
    element.querySelector(".progress-counts").textContent = job.classified === null
      ? job.batches_done + "/" + (job.batches_total === null ? "?" : job.batches_total) + " batches"
      : (job.classified + job.failed) + "/" + (job.total === null ? "?" : job.total) + " images";
    var status = element.querySelector(".status");
    var partly = job.status === "done" && job.failed;  // some images failed: say so, in amber
    status.textContent = partly ? "done, " + job.failed + " failed" : job.status;
    status.className = "status status-" + (partly ? "done-with-failures" : job.status);
    var waiting = element.querySelector(".waiting");
    waiting.textContent = job.waiting_for_worker || "";
    waiting.hidden = !job.waiting_for_worker;
  }

  function settled(job) {  // nothing more will change on the page: reload it once
    return finished(job.status) && (job.status !== "done" || job.report !== null);
  }

  function finished(status) {  // done, cancelled or failed: nothing more will be written
    return status !== "scanning" && status !== "running";
  }

  function follow(element) {
    var bar = element.querySelector(".bar");
    bar.style.width = bar.getAttribute("aria-valuenow") + "%";
    if (element.dataset.finished === "yes") {
      return;
    }
    var reloadWhenDone = document.querySelectorAll("[data-progress-job]").length === 1;
    var timer = window.setInterval(function () {
      fetch("/api/v1/jobs/" + element.dataset.progressJob, {headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) {
          if (!job) { return; }
          show(element, job);
          if (finished(job.status)) { element.dataset.finished = "yes"; }
          if (!reloadWhenDone && finished(job.status)) { window.clearInterval(timer); }
          if (reloadWhenDone && settled(job)) {
            window.clearInterval(timer);
            var card = document.getElementById("review-card");
            // Never under a person reviewing: the reload would take their image away.
            if (!card || card.hidden) { window.location.reload(); }
          }
        })
        .catch(function () { /* the server is restarting: try again on the next tick */ });
    }, 1000);
  }

  document.querySelectorAll("[data-progress-job]").forEach(follow);
}());
