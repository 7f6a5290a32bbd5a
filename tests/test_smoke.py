from tests.conftest import continue_with, mailed_link


def test_sign_in_journey(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    response = continue_with(client, token)
    assert response.status_code == 303
    assert response.headers["Location"] == "/portal"
    home = client.get("/portal")
    assert "Hello, Alex Morgan" in home.get_data(as_text=True)
