"""Public shapes several ways in share: the generation request and event detail, the job
view (API answers and webhook data), options as any source gives them. They import only
the domain (and the fetch guards' and providers' names they check against)."""
