"use strict";
/* Stores the web token as a same-site cookie, then returns to the page that asked for it. */
document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    if (!token) return;
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = "journey_token=" + encodeURIComponent(token) + "; Path=/; SameSite=Strict" + secure;
    const back = window.location.pathname === "/login" ? "/dashboard" : window.location.pathname;
    window.location.replace(back);
  });
});
